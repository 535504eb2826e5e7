"""costkit.providers."""
