"""L-BFGS with a strong-Wolfe line search, one step = up to ``max_iter`` iterations (as pykan).

The curvature pairs live in a ring buffer whose Gram matrix is kept up to date, so the
search direction costs two matrix-vector products (compact form) however long the history:
a history of 30 pairs (pykan keeps 10) converges markedly further in float64 fits.
"""

from __future__ import annotations

import numpy as np
import torch

from .line_search import strong_wolfe


class CurvatureMemory:
    """The last ``size`` pairs (s, y) with s = step, y = change of gradient, and the product
    with the L-BFGS inverse-Hessian approximation in the compact form of Byrd, Nocedal &
    Schnabel (1994):

        H = gamma I + [S  gamma Y] M [S  gamma Y]^T,
        M = [[R^-T (D + gamma Y^T Y) R^-1, -R^-T], [-R^-1, 0]],

    with S, Y the pairs as rows (oldest first), R the upper triangle of S Y^T, D its diagonal
    and gamma = s.y / y.y of the newest pair."""

    def __init__(self, size: int):
        self.size = size
        self.clear()

    def clear(self) -> None:
        self.rows: torch.Tensor | None = None  # (2 size, P): s in slots [0, size), y in [size, 2 size)
        self._gram: np.ndarray | None = np.zeros((2 * self.size, 2 * self.size))  # inner products of all rows
        self.order: list[int] = []  # occupied slots, oldest first
        self.gamma = 1.0

    @property
    def gram(self) -> np.ndarray:
        """Inner products of all rows (recomputed after the C++ step changed the rows)."""
        if self._gram is None:
            self._gram = (self.rows @ self.rows.T).cpu().double().numpy()
            if self.order:
                newest = self.order[-1]
                sy, yy = self._gram[newest, self.size + newest], self._gram[self.size + newest, self.size + newest]
                self.gamma = float(sy / yy)
        return self._gram

    def changed_outside(self, order: list[int]) -> None:
        """The rows were updated by the C++ step, which leaves `order` occupied."""
        self.order = list(order)
        self._gram = None

    def __len__(self) -> int:
        return len(self.order)

    def add(self, s: torch.Tensor, y: torch.Tensor, sy: float) -> None:
        if self.rows is None:
            self.rows = s.new_zeros(2 * self.size, s.numel())
        slot = self.order.pop(0) if len(self.order) == self.size else len(self.order)
        self.rows[slot] = s
        self.rows[self.size + slot] = y
        inner = (self.rows @ torch.stack([s, y], dim=1)).cpu().numpy()  # (2 size, 2)
        gram = self.gram
        for row, column in ((slot, inner[:, 0]), (self.size + slot, inner[:, 1])):
            gram[row, :] = column
            gram[:, row] = column
        self.order.append(slot)
        self.gamma = sy / gram[self.size + slot, self.size + slot]

    def apply(self, g: torch.Tensor) -> torch.Tensor:
        """H g."""
        slots = np.asarray(self.order)
        s_rows, y_rows = slots, slots + self.size
        ab = (self.rows @ g).cpu().numpy()
        a, b = ab[s_rows], ab[y_rows]
        gram = self.gram
        s_y = gram[np.ix_(s_rows, y_rows)]
        y_y = gram[np.ix_(y_rows, y_rows)]
        gamma = self.gamma
        R = np.triu(s_y)  # tiny dense solves: cheaper than scipy's triangular wrappers
        r_inv_a = np.linalg.solve(R, a)
        p_s = np.linalg.solve(R.T, np.diag(s_y) * r_inv_a + gamma * (y_y @ r_inv_a) - gamma * b)
        coeffs = np.zeros(2 * self.size)
        coeffs[s_rows] = p_s
        coeffs[y_rows] = -gamma * r_inv_a
        return g * gamma + torch.as_tensor(coeffs, dtype=g.dtype, device=g.device) @ self.rows

    def state_dict(self) -> dict:
        if self.rows is None:
            return {}
        state = {"rows": self.rows, "order": torch.tensor(self.order, dtype=torch.int64)}
        if self._gram is not None:  # stale after a C++ step: recomputed from the rows when needed,
            # not for every checkpoint the fit takes (a (2 size)^2 GEMM over all parameters)
            state["gram"] = torch.from_numpy(self._gram.copy())
            state["gamma"] = self.gamma
        return state

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        if "rows" in state:
            self.rows = state["rows"].clone()
            self.order = [int(v) for v in state["order"]]
            if "gram" in state:
                self._gram = state["gram"].numpy().copy()
                self.gamma = float(state["gamma"])
            else:
                self._gram = None  # gamma comes with it


class LBFGS:
    name = "lbfgs"

    def __init__(self, lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 history_size: int = 30, tolerance_grad: float = 0.0, tolerance_change: float = 0.0):
        self.lr = lr
        self.max_iter = max_iter
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        self.history_size = history_size
        self.tolerance_grad = tolerance_grad
        self.tolerance_change = tolerance_change
        self.memory = CurvatureMemory(history_size)
        self.reset()

    def reset(self) -> None:
        """Forget curvature history (after the objective itself changed, e.g. a grid update)."""
        self.memory.clear()
        self.direction: torch.Tensor | None = None
        self.prev_grad: torch.Tensor | None = None
        self.t = 0.0

    def step(self, objective) -> float:
        fused = getattr(objective, "fused", None)
        if fused is not None and fused.has_lbfgs:
            return self._fused_step(objective, fused)
        theta = objective.theta
        loss, g = objective.evaluate()
        loss = float(loss)
        evals = 1
        for _ in range(self.max_iter):
            if self.tolerance_grad and float(g.abs().max()) <= self.tolerance_grad:
                break
            fresh = self.direction is None
            if not fresh:
                self._remember(g)
            d = -self.memory.apply(g) if len(self.memory) else -g
            gtd = float(g.dot(d))
            if not gtd < 0:  # lost descent: start over from steepest descent
                self.reset()
                d, gtd, fresh = -g, -float(g.dot(g)), True
            if fresh:
                size = float(g.abs().sum())
                if size == 0.0:  # a stationary point (e.g. an exact fit): nothing left to do
                    break
                t = self.lr * min(1.0, 1.0 / size)
            else:
                t = self.lr
            self.prev_grad = g
            theta0 = theta.clone()
            new_loss, g_new, t, n = strong_wolfe(objective, theta0, d, t, loss, g, gtd)
            evals += n
            if t == 0.0:  # the line search found no decrease: reset and end the step
                theta.copy_(theta0)
                self.reset()
                break
            prev_loss, loss, g = loss, new_loss, g_new
            self.direction, self.t = d, t
            if evals >= self.max_eval:
                break
            if self.tolerance_change and (float(d.abs().max()) * t <= self.tolerance_change
                                          or abs(loss - prev_loss) <= self.tolerance_change * abs(prev_loss)):
                break
        return loss

    def _fused_step(self, objective, fused) -> float:
        """The same step, run by the C++ kernels (csrc/lbfgs.h) for a plain KAN's MSE."""
        theta = objective.theta
        memory = self.memory
        if memory.rows is None:
            memory.rows = theta.new_zeros(2 * memory.size, theta.numel())
        if self.direction is None:
            direction, prev_grad, has_direction = torch.zeros_like(theta), torch.zeros_like(theta), False
        else:
            direction, prev_grad, has_direction = self.direction.contiguous(), self.prev_grad.contiguous(), True
        loss, order, has_direction, t = fused.lbfgs_step(
            objective.X, objective.y, theta, objective.names, memory.rows, memory.order, direction, prev_grad,
            has_direction, self.t, self.max_iter, self.max_eval, self.lr, self.tolerance_grad, self.tolerance_change)
        memory.changed_outside(order)
        self.direction, self.prev_grad = (direction, prev_grad) if has_direction else (None, None)
        self.t = t
        return loss

    def _remember(self, g: torch.Tensor) -> None:
        y = g - self.prev_grad
        s = self.direction * self.t
        ys = float(y.dot(s))
        # curvature condition, relative so that it keeps working when the loss is 1e-14
        if ys > 1e-10 * float(y.norm() * s.norm()):
            self.memory.add(s, y, ys)

    def state_dict(self) -> dict:
        state = {"t": self.t, **{f"memory.{k}": v for k, v in self.memory.state_dict().items()}}
        if self.direction is not None:
            state["direction"] = self.direction
            state["prev_grad"] = self.prev_grad
        return state

    def load_state_dict(self, state: dict) -> None:
        self.reset()
        self.t = float(state["t"])
        self.memory.load_state_dict({k.removeprefix("memory."): v for k, v in state.items() if k.startswith("memory.")})
        if "direction" in state:
            self.direction, self.prev_grad = state["direction"].clone(), state["prev_grad"].clone()
