"""What a residual function sees of the solution: ``u.value``, ``u.grad``, ``u.laplacian``,
``u.hessian`` and ``u.d(i)``, ``u.d(i, j)``, computed on first use.

Each order is computed when the residual first touches it (the network's jet up to that
order, :mod:`kanopy.jets`); orders already handed out are kept, so every order is one tensor
per evaluation. ``level`` records the highest order the residual used: the objective computes
that much eagerly from then on.
"""

from __future__ import annotations

import torch

from .. import jets

ORDERS = {"value": jets.VALUE, "grad": jets.GRADIENT, "laplacian": jets.LAPLACIAN, "hessian": jets.HESSIAN}


class Derivatives:
    """The solution and its input derivatives at N points of a d-dimensional domain.

    Attributes (computed on first access): ``value`` (N,), ``grad`` (N, d), ``laplacian``
    (N,), ``hessian`` (N, d, d). ``d(i)`` is the partial derivative along coordinate i
    (N,), ``d(i, j)`` the second one.

    Parameters
    ----------
    compute : callable
        ``compute(level) -> kanopy.jets.Jet`` of one output, at least up to `level`.
    d : int
        Number of coordinates.
    jet : kanopy.jets.Jet, optional
        Orders already computed.

    Examples
    --------
    >>> import torch, kanopy
    >>> from kanopy import jets
    >>> from kanopy.pde.derivatives import Derivatives
    >>> model = kanopy.KAN([2, 3, 1], seed=0)
    >>> x = torch.zeros(4, 2, dtype=torch.float64)
    >>> u = Derivatives(lambda level: jets.network_jet(model, x, level), d=2)
    >>> u.grad.shape, u.level
    (torch.Size([4, 2]), 1)
    >>> u.d(2)
    Traceback (most recent call last):
    ...
    ValueError: derivative along coordinate 2 asked, but the problem has 2 coordinates (0..1)
    """

    def __init__(self, compute, d: int, jet: jets.Jet | None = None):
        self._compute = compute
        self.dim = d
        self._tensors: dict[str, torch.Tensor] = {}
        self.level = -1
        if jet is not None:
            self._take(jet)

    def _take(self, jet: jets.Jet) -> None:
        for name in ORDERS:
            t = getattr(jet, name)
            if t is not None and name not in self._tensors:
                self._tensors[name] = t[:, 0]  # the single output

    def _get(self, name: str) -> torch.Tensor:
        if name not in self._tensors:
            self._take(self._compute(ORDERS[name]))
        self.level = max(self.level, ORDERS[name])
        return self._tensors[name]

    @property
    def value(self) -> torch.Tensor:
        """The solution u at the points: (N,).

        Examples
        --------
        >>> import torch, kanopy
        >>> from kanopy import jets
        >>> from kanopy.pde.derivatives import Derivatives
        >>> model = kanopy.KAN([2, 1], seed=0)
        >>> x = torch.zeros(3, 2, dtype=torch.float64)
        >>> Derivatives(lambda level: jets.network_jet(model, x, level), 2).value.shape
        torch.Size([3])
        """
        return self._get("value")

    @property
    def grad(self) -> torch.Tensor:
        """The gradient of u in the coordinates: (N, d).

        Examples
        --------
        >>> import torch, kanopy
        >>> from kanopy import jets
        >>> from kanopy.pde.derivatives import Derivatives
        >>> model = kanopy.KAN([2, 1], seed=0)
        >>> x = torch.zeros(3, 2, dtype=torch.float64)
        >>> Derivatives(lambda level: jets.network_jet(model, x, level), 2).grad.shape
        torch.Size([3, 2])
        """
        return self._get("grad")

    @property
    def laplacian(self) -> torch.Tensor:
        """The Laplacian of u, the sum of the second derivatives over every coordinate: (N,).

        Examples
        --------
        >>> import torch, kanopy
        >>> from kanopy import jets
        >>> from kanopy.pde.derivatives import Derivatives
        >>> model = kanopy.KAN([2, 1], seed=0)
        >>> u = Derivatives(lambda level: jets.network_jet(model, torch.zeros(3, 2, dtype=torch.float64), level), 2)
        >>> u.laplacian.shape
        torch.Size([3])
        """
        return self._get("laplacian")

    @property
    def hessian(self) -> torch.Tensor:
        """The matrix of second derivatives of u: (N, d, d).

        Examples
        --------
        >>> import torch, kanopy
        >>> from kanopy import jets
        >>> from kanopy.pde.derivatives import Derivatives
        >>> model = kanopy.KAN([2, 1], seed=0)
        >>> u = Derivatives(lambda level: jets.network_jet(model, torch.zeros(3, 2, dtype=torch.float64), level), 2)
        >>> u.hessian.shape
        torch.Size([3, 2, 2])
        """
        return self._get("hessian")

    def d(self, *axes: int) -> torch.Tensor:
        """A partial derivative: ``d(i)`` is du/dx_i, ``d(i, j)`` is d2u/dx_i dx_j, each (N,).

        Parameters
        ----------
        *axes : int
            One or two coordinates, 0-based.

        Returns
        -------
        torch.Tensor
            Shape (N,).

        Raises
        ------
        ValueError
            For a coordinate the problem does not have, or not one or two of them.

        Examples
        --------
        >>> import torch, kanopy
        >>> from kanopy import jets
        >>> from kanopy.pde.derivatives import Derivatives
        >>> model = kanopy.KAN([2, 1], seed=0)
        >>> u = Derivatives(lambda level: jets.network_jet(model, torch.rand(3, 2, dtype=torch.float64), level), 2)
        >>> bool(torch.equal(u.d(1, 1), u.hessian[:, 1, 1]))
        True
        """
        if len(axes) not in (1, 2):
            raise ValueError(f"d() takes one or two coordinates (first or second derivative), got {len(axes)}")
        for axis in axes:
            if not isinstance(axis, int) or isinstance(axis, bool) or not 0 <= axis < self.dim:
                raise ValueError(f"derivative along coordinate {axis!r} asked, but the problem has {self.dim} "
                                 f"coordinates (0..{self.dim - 1})")
        if len(axes) == 1:
            return self.grad[:, axes[0]]
        i, j = axes
        return self.hessian[:, i, j]
