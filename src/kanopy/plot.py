"""Drawing a KAN: nodes by layer, every active edge with its learned curve, edge opacity by
importance, symbolic edges labelled with their function.

Uses matplotlib's object-oriented API on its own Figure (no pyplot state is touched).
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .prune import attribution

_MAX_INSETS = 120  # beyond this many edges only lines are drawn


def plot_model(model, path=None, X=None, var_names=None, output_names=None, title: str | None = None,
               dpi: int = 150, width_inches: float | None = None) -> Figure:
    """Draw `model` (on samples X, or the model's own samples, or its grid domains) and
    save it to `path` when given (format from the suffix, e.g. .png, .pdf, .svg)."""
    X = _inputs(model, X)
    with torch.no_grad():
        traces = model.trace(X)
        scores = attribution(model, X).edges
    levels = [sum(w) for w in model.width]
    L = len(model.layers)
    n_wide = max(levels)
    fig = Figure(figsize=(width_inches or max(4.0, 1.6 * n_wide), 2.4 * L + 1.0))
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")

    def node_xy(level, index):
        count = levels[level]
        x = (index + 0.5) / count if count else 0.5
        y = 0.06 + 0.88 * level / L
        return x, y

    var_names = list(var_names) if var_names is not None else list(model.info.get("features") or []) \
        or [f"x_{i + 1}" for i in range(model.n_inputs)]
    output_names = list(output_names) if output_names is not None else [model.info.get("target", "y")] \
        if model.n_outputs == 1 else [f"y_{j + 1}" for j in range(model.n_outputs)]
    edges = [(l, i, j) for l, layer in enumerate(model.layers) for i in range(layer.in_dim)
             for j in range(layer.out_dim) if layer.mask[i, j] != 0]
    insets = len(edges) <= _MAX_INSETS
    top = max((float(s.max()) for s in scores), default=1.0) or 1.0
    for l, layer in enumerate(model.layers):
        trace = traces[l]
        row = [(i, j) for (m, i, j) in edges if m == l]
        # each layer's edge curves sit in one row between its two levels, in (i, j) order
        w, h = min(0.8 / max(len(row), 1), 0.12), min(0.3 / L, 0.12)
        y_mid = (node_xy(l, 0)[1] + node_xy(l + 1, 0)[1]) / 2
        for e, (i, j) in enumerate(row):
            x0, y0 = node_xy(l, i)
            x1, y1 = node_xy(l + 1, model.layout(l).node_of(j))
            alpha = float(min(1.0, 0.15 + 0.85 * (float(scores[l][i, j]) / top) ** 0.5))
            name = layer.symbolic.names[i][j]
            color = "tab:red" if name else "black"
            if insets:
                xe = (e + 0.5) / len(row)
                ax.plot([x0, xe], [y0, y_mid - h / 2], color=color, alpha=alpha, linewidth=1.0, zorder=1)
                ax.plot([xe, x1], [y_mid + h / 2, y1], color=color, alpha=alpha, linewidth=1.0, zorder=1)
                _curve(fig, trace.inputs[:, i], trace.edges[:, i, j], (xe - w / 2, y_mid - h / 2, w, h),
                       color, alpha, name)
            else:
                ax.plot([x0, x1], [y0, y1], color=color, alpha=alpha, linewidth=1.0, zorder=1)
    for level, count in enumerate(levels):
        n_sum = model.width[level][0]
        for index in range(count):
            x, y = node_xy(level, index)
            product = level > 0 and index >= n_sum
            ax.scatter([x], [y], s=90, marker="X" if product else "o", color="white", edgecolors="black",
                       zorder=3)
            if level == 0:
                ax.text(x, y - 0.035, var_names[index] if index < len(var_names) else "", ha="center", va="top",
                        fontsize=9)
            if level == L:
                ax.text(x, y + 0.035, str(output_names[index]), ha="center", va="bottom", fontsize=9)
    if title:
        ax.text(0.01, 0.995, title, ha="left", va="top", fontsize=10)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig


def _curve(fig, x, y, box, color, alpha, name):
    """A small plot of an edge's function in `box` (left, bottom, width, height; figure units)."""
    inset = fig.add_axes(list(box))
    order = torch.argsort(x)
    inset.plot(x[order].cpu().numpy(), y[order].cpu().numpy(), color=color, alpha=alpha, linewidth=1.2)
    inset.set_xticks([])
    inset.set_yticks([])
    for spine in inset.spines.values():
        spine.set_alpha(0.3 * alpha)
    inset.patch.set_alpha(0.85)
    if name:
        inset.set_title(name, fontsize=7, color=color, pad=1)


def _inputs(model, X):
    if X is not None or model.samples is not None:
        return model.sample_inputs(X)
    # no data: a grid over every input's spline domain (in the model's input units)
    lo, hi = model.layers[0].domain()
    t = torch.linspace(0, 1, 200, dtype=model.dtype, device=model.device)[:, None]
    return (lo + (hi - lo) * t) * model.in_scale + model.in_shift
