"""Adam on a flat parameter vector."""

from __future__ import annotations

import torch


class Adam:
    name = "adam"

    def __init__(self, lr: float = 1e-2, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        self.reset()

    def reset(self) -> None:
        self.m = self.v = None
        self.count = 0

    def step(self, objective) -> float:
        loss, g = objective.evaluate()
        if self.m is None:
            self.m, self.v = torch.zeros_like(g), torch.zeros_like(g)
        b1, b2 = self.betas
        self.count += 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat = self.m / (1 - b1**self.count)
        v_hat = self.v / (1 - b2**self.count)
        objective.theta.addcdiv_(m_hat, v_hat.sqrt_().add_(self.eps), value=-self.lr)
        return float(loss)

    def state_dict(self) -> dict:
        state = {"count": self.count}
        if self.m is not None:
            state.update(m=self.m, v=self.v)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.reset()
        self.count = int(state["count"])
        if "m" in state:
            self.m, self.v = state["m"].clone(), state["v"].clone()
