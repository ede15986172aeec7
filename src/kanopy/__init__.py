"""kanopy: Kolmogorov-Arnold Networks for science."""

__version__ = "0.1.0"

from . import prune
from .fit import History
from .io import ModelFileError
from .layer import KANLayer
from .model import KAN


def discover(X, y, var_names=None, *, effort: float | None = None, budget_s: float | None = None, seed: int = 0,
             verbose: bool = False, log=None):
    """One call from data to formula; see :func:`kanopy.discovery.discover`. `effort` is the
    work the search may do (None: ``kanopy.discovery.DEFAULT_EFFORT``), the same on every
    machine; `budget_s` an optional wall-clock cap in seconds."""
    from .discovery import DEFAULT_EFFORT
    from .discovery import discover as _discover

    return _discover(X, y, var_names=var_names, effort=DEFAULT_EFFORT if effort is None else effort,
                     budget_s=budget_s, seed=seed, verbose=verbose, log=log)


def load(path, device="cpu") -> KAN:
    """Read a model file written by ``KAN.save`` (safetensors + JSON; never pickle)."""
    from .io import load_model

    return load_model(path, device=device)


def __getattr__(name):
    # KANRegressor needs scikit-learn (optional): imported on first use only
    if name == "KANRegressor":
        from .estimator import KANRegressor

        return KANRegressor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KAN", "KANLayer", "History", "ModelFileError", "discover", "load", "prune", "__version__"]
