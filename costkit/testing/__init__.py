"""costkit.testing."""
