"""From a symbolic KAN to sympy expressions, and from expressions to code.

The formula is written in the user's variable names and original units: the model's input
and output maps (in_shift/in_scale, out_shift/out_scale) are folded in. Exports: LaTeX, a
NumPy callable and a torch callable.
"""

from __future__ import annotations

import math

import sympy
import torch

from . import library


def _on_tensors(fn):
    """torch functions also called on plain numbers (constant subexpressions like sqrt(2))."""

    def call(x):
        return fn(x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64))

    return call


_TORCH_FUNCS = {
    name: _on_tensors(fn) for name, fn in {
        "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp, "log": torch.log,
        "sqrt": torch.sqrt, "Abs": torch.abs, "sign": torch.sign, "asin": torch.asin, "acos": torch.acos,
        "atan": torch.atan, "atanh": torch.atanh, "tanh": torch.tanh, "sinh": torch.sinh, "cosh": torch.cosh,
    }.items()
}
_TORCH_FUNCS.update(pi=math.pi, E=math.e)


def symbols_for(names, positive=None):
    """sympy Symbols (real; positive where the flag says so)."""
    positive = positive or [False] * len(names)
    return [sympy.Symbol(str(n), real=True, positive=bool(p) or None) for n, p in zip(names, positive)]


def model_expressions(model, var_names=None, variables=None) -> list[sympy.Expr]:
    """One expression per output, in original units; every active edge must be symbolic.
    `variables` (sympy symbols) override `var_names`."""
    nodes = node_expressions(model, len(model.layers), var_names, variables)
    return [node * _num(s) + _num(o) for node, s, o in zip(nodes, model.out_scale, model.out_shift)]


def node_expressions(model, level: int, var_names=None, variables=None) -> list[sympy.Expr]:
    """Expressions of the node values at `level` (0: the normalised inputs, L: the outputs
    before output scaling); the edges of layers below `level` must be symbolic."""
    numeric = [(l, i, j) for l, layer in enumerate(model.layers[:level]) for i in range(layer.in_dim)
               for j in range(layer.out_dim) if layer.mask[i, j] != 0 and layer.symbolic.names[i][j] is None]
    if numeric:
        shown = ", ".join(map(str, numeric[:8])) + (" ..." if len(numeric) > 8 else "")
        raise ValueError(f"{len(numeric)} active edges are not symbolic yet ({shown}); "
                         "call auto_symbolic() or fix_symbolic() first")
    if variables is None:
        names = list(var_names) if var_names is not None else [f"x_{i + 1}" for i in range(model.n_inputs)]
        if len(names) != model.n_inputs:
            raise ValueError(f"var_names has {len(names)} names for {model.n_inputs} inputs")
        positive = (model.samples > 0).all(dim=0).tolist() if model.samples is not None else None
        variables = symbols_for(names, positive)
    nodes = [(v - _num(s)) / _num(c) for v, s, c in zip(variables, model.in_shift, model.in_scale)]
    for l, layer in enumerate(model.layers[:level]):
        sub = []
        for j in range(layer.out_dim):
            total = _num(layer.bias[j])
            for i in range(layer.in_dim):
                name = layer.symbolic.names[i][j]
                if layer.mask[i, j] == 0 or name is None:
                    continue
                a, b, c, d = (_num(v) for v in layer.symbolic.affine[i, j])
                total = total + c * library.get(name).sympy_fn(a * nodes[i] + b) + d
            sub.append(total)
        nodes = model.layout(l).combine_list(sub)
    return nodes


def _num(value) -> sympy.Float:
    value = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    return sympy.Integer(int(value)) if value == int(value) and abs(value) < 1e15 else sympy.Float(value, 17)


def tidy(expr, full_simplify_below: int = 30) -> sympy.Expr:
    """A simpler equivalent form, in bounded time: a few cheap rewrites (powsimp, logs
    expanded and combined, together, factor_terms), keeping the least complex; sympy's full
    simplify (which can take minutes on 50-node expressions, or on any with Float
    coefficients) only for small float-free ones, preferred when at most one node longer (it
    reads better: sigma/(epsilon*(chi + 1)))."""
    rewrites = (sympy.powsimp, lambda e: sympy.powsimp(sympy.expand_log(e, force=True)), sympy.together,
                sympy.factor_terms, lambda e: sympy.logcombine(e, force=True))
    candidates = [expr]
    for rewrite in rewrites:
        try:
            candidates.append(rewrite(expr))
        except Exception:  # a rewrite that fails on an exotic form is skipped
            continue
    best = min(candidates, key=complexity)
    # factoring with Float coefficients can take practically forever inside trigsimp
    if complexity(expr) <= full_simplify_below and not expr.atoms(sympy.Float):
        try:
            full = sympy.simplify(expr)
            if complexity(full) <= complexity(best) + 1:
                best = full
        except Exception:
            pass
    return best


def complexity(expr: sympy.Expr) -> int:
    """Number of nodes of the expression tree (PySR's measure)."""
    return sum(1 for _ in sympy.preorder_traversal(expr))


def operations(expr: sympy.Expr) -> int:
    return int(sympy.count_ops(expr, visual=False))


def to_latex(expr: sympy.Expr) -> str:
    return sympy.latex(expr)


def to_numpy(expr, variables):
    """A NumPy function f(*columns) (or f(X) with X (N, n_vars) when given one 2-D array)."""
    f = sympy.lambdify(variables, expr, "numpy")
    return _columns_or_matrix(f, len(variables))


def to_torch(expr, variables):
    """A torch function of tensors, differentiable (autograd) where the formula is."""
    f = sympy.lambdify(variables, expr, [_TORCH_FUNCS, "math"])
    return _columns_or_matrix(f, len(variables))


def _columns_or_matrix(f, n):
    def call(*args):
        if len(args) == 1 and n != 1 and getattr(args[0], "ndim", 1) == 2:
            args = tuple(args[0][:, i] for i in range(n))
        out = f(*args)
        if hasattr(args[0], "shape") and not hasattr(out, "shape") or getattr(out, "shape", None) == ():
            # a constant formula: broadcast to the input's length
            import numpy as np

            if isinstance(args[0], torch.Tensor):
                return torch.full_like(args[0], float(out))
            return np.full(np.shape(args[0]), float(out))
        return out

    return call
