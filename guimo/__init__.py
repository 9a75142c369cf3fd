"""guimo (规模, "scale"): train, measure and serve transformer models for scale businesses.

Importing the package is cheap on purpose: heavy modules (torch, the server, plotting) are
imported by the functions that need them, so `guimo --help` and the server's workers start fast.
"""

__version__ = "0.1.0"
