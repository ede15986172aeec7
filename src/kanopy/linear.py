"""The linear model and the mean among the default recipe's candidates, written as KANs.

For classification: the class prior (``constant_kan``) and the penalised linear logistic
model (``logistic_kan``: multinomial for cross-entropy, one logit for BCE).

Ridge regression on the scaled inputs (the network's own input scaling, to [-1, 1]) and the
standardised targets, its penalty chosen per output by leave-one-out error (in closed form,
as scikit-learn's RidgeCV does). The result becomes a
KAN [n_inputs, n_outputs] whose edges are straight lines (B-splines reproduce linear
functions exactly: coefficients at the Greville abscissae of the knots) and whose base
branch is off, so it predicts, saves, loads and extends by grid refinement like any KAN.
"""

from __future__ import annotations

import torch

from .model import KAN

# ridge penalties tried, relative to the number of rows (the inputs are scaled to [-1, 1]);
# the largest is the mean for all practical purposes
RELATIVE_PENALTIES = torch.logspace(-6, 4, 41, dtype=torch.float64)
LOGISTIC_ITERATIONS = 50  # L-BFGS iterations of a linear logistic fit (digits: log loss within 2% of 200's)


def ridge_loo(Z: torch.Tensor, T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ridge regression of T (N, m) on Z (N, n) with an (unpenalised) intercept, the penalty
    chosen for each output by leave-one-out error in closed form (residual / (1 - leverage)).
    Returns (W (n, m), b (m,), penalties (m,), leave-one-out residuals (N, m) at them)."""
    n_rows = Z.shape[0]
    z_mean, t_mean = Z.mean(dim=0), T.mean(dim=0)
    Zc, Tc = Z - z_mean, T - t_mean
    U, s, Vt = torch.linalg.svd(Zc, full_matrices=False)  # Zc = U diag(s) Vt; U (N, r)
    UtT = U.T @ Tc  # (r, m)
    U2 = U**2
    alphas = RELATIVE_PENALTIES.to(Z) * n_rows  # (A,)
    best_error = torch.full((T.shape[1],), float("inf"), dtype=Z.dtype)
    best = torch.zeros(T.shape[1], dtype=torch.long)
    best_loo = torch.zeros_like(T)
    for index, alpha in enumerate(alphas):
        shrink = s**2 / (s**2 + alpha)  # (r,): fraction of each singular direction kept
        residual = Tc - U @ (shrink[:, None] * UtT)  # (N, m)
        leverage = U2 @ shrink + 1.0 / n_rows  # (N,), the intercept's share included
        loo = residual / (1 - leverage).clamp_min(1e-12)[:, None]
        error = (loo**2).mean(dim=0)
        better = error < best_error  # the first (smallest) penalty among equals, as RidgeCV
        best_error, best = torch.where(better, error, best_error), torch.where(better, index, best)
        best_loo = torch.where(better, loo, best_loo)
    W = Vt.T @ ((s / (s**2 + alphas[best][:, None])).T * UtT)  # (n, m)
    return W, t_mean - z_mean @ W, alphas[best], best_loo


def mean_loo(T: torch.Tensor) -> torch.Tensor:
    """Leave-one-out residuals (N, m) of predicting the mean of the other rows."""
    n_rows = T.shape[0]
    return (T - T.mean(dim=0)) * n_rows / (n_rows - 1)


def linear_kan(model: KAN, X: torch.Tensor, y: torch.Tensor, mean_only: bool = False) -> torch.Tensor:
    """Make ``model`` (a KAN [n, m] whose data scaling is set) the ridge model of y (N, m) on
    X (N, n), or with ``mean_only`` the constant prediction of y's mean. Returns the ridge
    penalties chosen (m,) (infinite for the mean)."""
    if len(model.layers) != 1:
        raise ValueError(f"a linear model is a KAN without hidden layers, got width {model.width}")
    layer = model.layers[0]
    with torch.no_grad():
        Z = model.scaled_inputs(X.to(model.dtype))
        T = (y.to(model.dtype) - model.out_shift) / model.out_scale
        if mean_only:
            W, b = Z.new_zeros(Z.shape[1], T.shape[1]), T.mean(dim=0)
            penalties = torch.full((T.shape[1],), float("inf"), dtype=model.dtype)
        else:
            W, b, penalties, _ = ridge_loo(Z, T)
        write_linear(layer, W, b)
    return penalties


def write_linear(layer, W: torch.Tensor, b: torch.Tensor) -> None:
    """Make ``layer`` the affine map z @ W + b (W (in, out), b (out,)) of its inputs: straight
    spline edges, the base branch off."""
    with torch.no_grad():
        coef = W[:, None, :] * greville(layer.knots, layer.k)[:, :, None]  # (n, G+k, m)
        coef[0] += b  # the intercept rides on the first edge (a spline holds constants exactly)
        layer.coef.copy_(coef)
        layer.scale_base.zero_()
        layer.scale_sp.fill_(1.0)
        layer.bias.zero_()


def logistic(Z: torch.Tensor, y: torch.Tensor, loss, penalty: float, n_outputs: int, start=None,
             max_iter: int = LOGISTIC_ITERATIONS):
    """The linear logits of a classification loss: (W (n, m), b (m,)), m = n_outputs,
    minimising ``loss(Z @ W + b, y) + penalty * sum(W**2)`` (the intercept unpenalised), a
    convex problem, by L-BFGS with a strong-Wolfe line search from ``start`` ((W, b), e.g. the
    solution for a larger penalty) or zero."""
    theta = Z.new_zeros(Z.shape[1] + 1, n_outputs)
    if start is not None:
        theta[:-1], theta[-1] = start
    theta.requires_grad_(True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        W, b = theta[:-1], theta[-1]
        value = loss(Z @ W + b, y) + penalty * (W**2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(closure)
    theta = theta.detach()
    return theta[:-1], theta[-1]


def logistic_kan(model: KAN, X: torch.Tensor, y: torch.Tensor, loss, penalty: float, start=None):
    """Make ``model`` (a KAN [n, m] of logits, its input scaling set) the penalised linear
    logistic model of ``logistic`` on its scaled inputs (multinomial for cross-entropy);
    returns its (W, b)."""
    if len(model.layers) != 1:
        raise ValueError(f"a linear model is a KAN without hidden layers, got width {model.width}")
    with torch.no_grad():
        Z = model.scaled_inputs(X.to(model.dtype))
    W, b = logistic(Z, y, loss, penalty, model.n_outputs, start)
    write_linear(model.layers[0], W, b)
    return W, b


def constant_kan(model: KAN, values: torch.Tensor) -> None:
    """Make ``model`` (a KAN [n, m]) predict the constant ``values`` (m,) everywhere (in its
    scaled outputs), held as linear_kan holds an intercept: by the first edge's spline."""
    if len(model.layers) != 1:
        raise ValueError(f"a constant model is a KAN without hidden layers, got width {model.width}")
    layer = model.layers[0]
    with torch.no_grad():
        T = (values.to(model.dtype) - model.out_shift) / model.out_scale  # (m,)
        layer.coef.zero_()
        layer.coef[0] += T
        layer.scale_base.zero_()
        layer.scale_sp.fill_(1.0)
        layer.bias.zero_()


def greville(knots: torch.Tensor, k: int) -> torch.Tensor:
    """Greville abscissae (in, G+k) of knots (in, G+2k+1): sum_m xi_m B_m(x) = x."""
    windows = knots[:, 1:-1].unfold(1, k, 1)  # (in, G+k, k): knots m+1 .. m+k
    return windows.mean(dim=-1)
