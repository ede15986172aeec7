"""kanopy: Kolmogorov-Arnold Networks for science.

The names below are imported on first use (PEP 562), so that ``import kanopy`` and the
``kanopy`` command's ``--help`` do not pay for importing PyTorch before they need it."""

__version__ = "0.1.0"

import importlib
import importlib.util

_LAZY = {  # public name: module that defines it
    "KAN": "model", "KANLayer": "layer", "History": "history", "ModelFileError": "io", "KANRegressor": "estimator", "KANClassifier": "classifier",
    "MultiStageKAN": "multistage", "fit_multistage": "multistage",
}


def discover(X, y, var_names=None, *, effort: float | None = None, budget_s: float | None = None, seed: int = 0,
             verbose: bool = False, log=None):
    """One call from data to formula; see :func:`kanopy.discovery.discover`. `effort` is the
    work the search may do (None: ``kanopy.discovery.DEFAULT_EFFORT``), the same on every
    machine; `budget_s` an optional wall-clock cap in seconds."""
    from .discovery import DEFAULT_EFFORT
    from .discovery import discover as _discover

    return _discover(X, y, var_names=var_names, effort=DEFAULT_EFFORT if effort is None else effort,
                     budget_s=budget_s, seed=seed, verbose=verbose, log=log)


def load(path, device="cpu"):
    """Read a model file written by ``KAN.save`` or ``MultiStageKAN.save`` (safetensors +
    JSON; never pickle): a KAN or a MultiStageKAN."""
    from .io import load_model

    return load_model(path, device=device)


def __getattr__(name):
    if name in _LAZY:  # KANRegressor needs scikit-learn (optional): its ImportError says so
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule: kanopy.prune, kanopy.symbolic...
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = ["KAN", "KANLayer", "History", "ModelFileError", "MultiStageKAN", "discover", "fit_multistage", "load",
           "prune", "__version__"]
