"""deephype: a music bot with a model of its own. The package is imported as `deephype`."""

__version__ = "0.1.0"
