"""The package's version, a leaf: the User-Agent of the run's requests needs it, and reaching
it through the package root would load the Python API (and everything under it) first."""

__version__ = "0.1.0"
