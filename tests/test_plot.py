"""Drawing a network renders a picture."""

import torch
from conftest import uniform_samples

import kanopy


def test_plot_renders_png_with_symbolic_and_product_nodes(tmp_path):
    X = uniform_samples(300, 2, seed=0)
    model = kanopy.KAN([2, [2, 1], 1], grid=4, seed=0)
    model.fit(X, torch.sin(X[:, :1]) * X[:, 1:], steps=3, progress=False)
    model.fix_symbolic(0, 0, 0, "sin")
    figure = model.plot(tmp_path / "net.png", var_names=["u", "v"], title="test")
    data = (tmp_path / "net.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    texts = [t.get_text() for ax in figure.axes for t in ax.texts] + [ax.get_title() for ax in figure.axes]
    assert {"u", "v", "sin"} <= set(texts)


def test_plot_without_samples_uses_the_grid():
    model = kanopy.KAN([3, 2, 1], grid=5, seed=0)
    figure = model.plot()
    assert len(figure.axes) == 1 + 3 * 2 + 2  # the canvas and one curve per edge
