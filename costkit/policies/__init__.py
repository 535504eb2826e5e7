"""costkit.policies."""
