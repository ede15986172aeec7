"""From edges to formulas: the function library, 1-D fits, snapping, sympy formulas."""

from .formula import to_latex, to_numpy, to_torch

__all__ = ["to_latex", "to_numpy", "to_torch"]
