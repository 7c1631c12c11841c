"""The package's version (also ``setup.cfg``'s)."""

__version__ = "0.1.0"
