"""The documentation's promises: every public name has a numpydoc docstring whose examples run.

The API reference (docs/api.rst) renders these docstrings; here their Examples run as doctests
(small data, a few optimizer steps: seconds of CPU), and each public name is checked to have a
summary, the sections its signature calls for and at least one example."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import kanopy

MODULES = ["kanopy", "kanopy.model", "kanopy.layer", "kanopy.history", "kanopy.io", "kanopy.prune",
           "kanopy.multistage", "kanopy.estimator", "kanopy.classifier", "kanopy.pde", "kanopy.pde.solver",
           "kanopy.pde.derivatives"]

# what the API reference documents: kanopy.__all__, the estimators, and KAN's public methods
PUBLIC = [name for name in kanopy.__all__ if name != "__version__"] + ["KANRegressor", "KANClassifier"]


def _public_methods(cls):
    """Methods and properties defined by cls itself, not starting with '_'."""
    return [(name, value) for name, value in vars(cls).items()
            if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, (property, classmethod)))]


def _documented():
    """(qualified name, object) of every name the reference promises a full docstring for."""
    out = []
    for name in PUBLIC:
        obj = getattr(kanopy, name)
        out.append((f"kanopy.{name}", obj))
        if inspect.ismodule(obj):
            out += [(f"kanopy.{name}.{n}", v) for n, v in vars(obj).items()
                    if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
                    and getattr(v, "__module__", None) == obj.__name__]
    # the classes whose methods the API reference validates with numpydoc (docs/api.rst)
    for cls in (kanopy.KAN, kanopy.KANRegressor, kanopy.KANClassifier):
        out += [(f"kanopy.{cls.__name__}.{n}", v) for n, v in _public_methods(cls)]
    return out


def _doc(obj):
    target = obj.fget if isinstance(obj, property) else obj.__func__ if isinstance(obj, classmethod) else obj
    return inspect.getdoc(target) or "", target


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    """Every >>> example of the module's docstrings gives the output written under it."""
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.attempted > 0, f"{module} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {module} failed (see above)"


@pytest.mark.parametrize("qualname,obj", _documented(), ids=lambda v: v if isinstance(v, str) else "")
def test_public_name_has_numpydoc_docstring(qualname, obj):
    """A one-line summary, then the numpydoc sections the object needs, and a runnable example."""
    doc, target = _doc(obj)
    assert doc, f"{qualname} has no docstring"
    lines = doc.splitlines()
    assert lines[0].strip() and (len(lines) == 1 or not lines[1].strip()), f"{qualname}: summary line, then a blank"
    sections = {line.strip() for i, line in enumerate(lines[:-1]) if set(lines[i + 1].strip()) == {"-"}}
    assert "Examples" in sections and ">>>" in doc, f"{qualname}: no Examples section with >>> lines"
    if inspect.ismodule(target) or isinstance(obj, property):
        return
    try:
        params = [p for p in inspect.signature(target).parameters.values() if p.name not in ("self", "cls")]
    except (TypeError, ValueError):  # a builtin's signature (ModelFileError)
        params = []
    if params:
        assert "Parameters" in sections, f"{qualname}: no Parameters section"
        text = doc.split("Parameters\n", 1)[1]
        for p in params:
            shown = {"VAR_KEYWORD": "**", "VAR_POSITIONAL": "*"}.get(p.kind.name, "") + p.name
            assert any(line.startswith(shown) or f", {p.name}" in line.split(":")[0] or line.startswith(p.name + ",")
                       for line in text.splitlines()), f"{qualname}: parameter {p.name} not documented"
    if inspect.isfunction(target) and "return " in inspect.getsource(target) and not inspect.isgeneratorfunction(
            target) and "contextmanager" not in inspect.getsource(target).split("def ", 1)[0]:
        if any(line.strip().startswith("return ") and line.strip() != "return None"
               for line in inspect.getsource(target).splitlines()):
            assert "Returns" in sections or "Yields" in sections, f"{qualname}: no Returns section"
