"""stitch's version: the one place it is written (``pyproject.toml`` reads it from here).

A constant rather than ``importlib.metadata``: reading the installed distribution's metadata
costs about 10 ms of every start-up.
"""

__version__ = "0.1.0"
