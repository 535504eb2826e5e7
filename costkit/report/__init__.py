"""costkit.report."""
