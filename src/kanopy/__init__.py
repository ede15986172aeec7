"""kanopy: Kolmogorov-Arnold Networks for science.

The names below are imported on first use (PEP 562), so that ``import kanopy`` and the
``kanopy`` command's ``--help`` do not pay for importing PyTorch before they need it."""

import importlib
import importlib.util

from ._version import __version__

_LAZY = {  # public name: module that defines it
    "KAN": "model", "KANLayer": "layer", "History": "history", "ModelFileError": "io",
    "KANRegressor": "estimator", "KANClassifier": "classifier",
    "MultiStageKAN": "multistage", "fit_multistage": "multistage",
}


def discover(X, y, var_names=None, *, effort: float | None = None, budget_s: float | None = None, seed: int = 0,
             verbose: bool = False, log=None):
    """Find a closed-form formula ``y = f(X)``: one call from data to a sympy expression.

    KAN structures are tried from cheap to general (additive, multiplicative, products,
    compositions), separable functions are split into sub-problems, every edge is snapped to a
    library function and the constants are refitted by Levenberg-Marquardt and rounded where the
    error allows; least-squares polynomials and a snapped general KAN are the fallback, so there
    is always an answer. The data are split (seeded) into 60% training, 20% validation (model
    choice) and 20% test (the reported ``rmse``). See :func:`kanopy.discovery.discover`.

    Parameters
    ----------
    X : array-like or torch.Tensor
        Inputs, shape ``(N, n)``, at least 20 finite rows.
    y : array-like or torch.Tensor
        Target, shape ``(N,)`` or ``(N, 1)``.
    var_names : list of str, optional
        Distinct names of the columns of X; default ``x_1, x_2, ...``.
    effort : float, optional
        The work the search may do, in work units (optimizer steps, library fits and
        Levenberg-Marquardt iterations, each charged by its arithmetic; 1,000 units take about a
        second on one core). Default ``kanopy.discovery.DEFAULT_EFFORT`` (100,000). The result
        for a seed is the same on any machine.
    budget_s : float, optional
        An opt-in wall-clock cap in seconds (the result then depends on the machine's speed).
    seed : int, default 0
        Seed of the split and of every KAN trained.
    verbose : bool, default False
        Print progress lines.
    log : callable, optional
        Receives the progress lines instead.

    Returns
    -------
    kanopy.discovery.Discovery
        ``expr`` (sympy), ``rmse`` (held-out test RMSE), ``relative_rmse``, ``exact``,
        ``pareto`` (candidates, complexity against error, the chosen one first), ``model`` (the
        KAN behind the formula, or None), ``work`` and ``limit`` (None, "effort" or "time": what
        cut the search short). Calling it evaluates the formula on rows of X.

    Raises
    ------
    ValueError
        For bad data (NaN, inf, mismatched shapes, fewer than 20 rows) or bad `var_names`.
    RuntimeError
        When no formula was found within the limits.

    Examples
    --------
    >>> import numpy as np, kanopy
    >>> x = np.random.default_rng(0).uniform(-1, 1, (1000, 1))
    >>> result = kanopy.discover(x, np.exp(-x[:, 0] ** 2), var_names=["x"], effort=3000)
    >>> result.expr  # doctest: +SKIP
    exp(-x**2)
    >>> result.exact
    True
    """
    from .discovery import DEFAULT_EFFORT
    from .discovery import discover as _discover

    return _discover(X, y, var_names=var_names, effort=DEFAULT_EFFORT if effort is None else effort,
                     budget_s=budget_s, seed=seed, verbose=verbose, log=log)


def load(path, device="cpu"):
    """Read a model file written by :meth:`KAN.save` or :meth:`MultiStageKAN.save`.

    The file is checked before anything is built: safetensors with kanopy's JSON metadata only,
    never a pickle (refused without being executed), a format version this kanopy reads.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file.
    device : str or torch.device, default "cpu"
        Where to put the model.

    Returns
    -------
    KAN or MultiStageKAN
        The model, with its ``info`` and, when saved, its optimizer state (``fit_state``).

    Raises
    ------
    ModelFileError
        (a ValueError) For a missing, truncated, damaged or foreign file, a pickle, or an
        unsupported format version, naming the problem.

    Examples
    --------
    >>> import os, tempfile, kanopy
    >>> path = os.path.join(tempfile.mkdtemp(), "model.kan")
    >>> kanopy.KAN([2, 3, 1], grid=5).save(path)
    >>> kanopy.load(path).width
    [[2, 0], [3, 0], [1, 0]]
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a model")
    >>> kanopy.load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kanopy.io.ModelFileError: ...: not a kanopy model file (no safetensors header: ...)
    """
    from .io import load_model
    from .model import KAN
    from .multistage import KIND, MultiStageKAN

    return load_model(path, {None: KAN, KIND: MultiStageKAN}, device=device)


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
           "pde", "prune", "__version__"]
