"""costkit.policies.cache."""
