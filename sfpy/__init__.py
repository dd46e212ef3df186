"""sfpy: SmartFrog re-made in Python.

Descriptions (`.sf` files) are parsed and resolved by :mod:`sfpy.language`, run by
:mod:`sfpy.engine`, and act on hosts through :mod:`sfpy.components`.
"""

__version__ = "0.1.0"
