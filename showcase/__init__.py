"""showcase: run a live AI-model tournament as a broadcast."""

__version__ = "0.1.0"
