"""gee_ref: a NumPy/CuPy reference implementation of GEE (genetically encoded spiking networks)."""
__version__ = "0.1.0"
