"""kanopy: Kolmogorov-Arnold Networks for science."""

__version__ = "0.1.0"

from . import prune
from .fit import History
from .io import ModelFileError
from .layer import KANLayer
from .model import KAN


def load(path, device="cpu") -> KAN:
    """Read a model file written by ``KAN.save`` (safetensors + JSON; never pickle)."""
    from .io import load_model

    return load_model(path, device=device)


__all__ = ["KAN", "KANLayer", "History", "ModelFileError", "load", "prune", "__version__"]
