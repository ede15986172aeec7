"""kanopy: Kolmogorov-Arnold Networks for science."""

__version__ = "0.1.0"

from . import prune
from .fit import History
from .io import ModelFileError
from .layer import KANLayer
from .model import KAN
from .multistage import MultiStageKAN, fit_multistage


def discover(X, y, var_names=None, budget_s: float = 60.0, seed: int = 0, verbose: bool = False, log=None):
    """One call from data to formula; see :func:`kanopy.discovery.discover`."""
    from .discovery import discover as _discover

    return _discover(X, y, var_names=var_names, budget_s=budget_s, seed=seed, verbose=verbose, log=log)


def load(path, device="cpu"):
    """Read a model file written by ``KAN.save`` or ``MultiStageKAN.save`` (safetensors +
    JSON; never pickle): a KAN or a MultiStageKAN."""
    from .io import load_model

    return load_model(path, device=device)


def __getattr__(name):
    # KANRegressor needs scikit-learn (optional): imported on first use only
    if name == "KANRegressor":
        from .estimator import KANRegressor

        return KANRegressor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KAN", "KANLayer", "History", "ModelFileError", "MultiStageKAN", "discover", "fit_multistage", "load",
           "prune", "__version__"]
