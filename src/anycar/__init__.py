"""anycar: one open ecosystem for every car.

The package is layered; dependencies point one way:
model -> broker -> adapters, accessories, policy -> APIs -> hub (composition root) -> CLI.
"""

__version__ = "0.1.0"
