"""costkit.sinks."""
