"""iMaterialist (Fashion) 2020 / Fashionpedia instance segmentation with attributes."""

__version__ = "0.1.0"
