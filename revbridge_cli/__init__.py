"""revbridge-cli: a bulk importer for the RevBridge Events API, and a local sandbox of it."""

__version__ = "0.1.0"
