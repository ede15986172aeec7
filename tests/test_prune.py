"""Attribution, pruning and greedy shrinking."""

import math

import torch
from conftest import uniform_samples

from kanopy import KAN
from kanopy.prune import attribution, prune, shrink


def test_unused_input_gets_no_score():
    X = uniform_samples(500, 3, seed=0)
    y = torch.sin(2 * X[:, :1]) + X[:, 1:2] ** 2  # the third input is not used
    model = KAN([3, 3, 1], grid=5, seed=0)
    model.fit(X, y, steps=30, lamb=1e-3, progress=False)
    scores = attribution(model, X)
    assert scores.nodes[0][2] < 0.1 * min(scores.nodes[0][0], scores.nodes[0][1])


def test_prune_keeps_predictions_and_drops_parameters():
    X = uniform_samples(500, 2, seed=1)
    y = torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)
    model = KAN([2, 5, 1], grid=5, seed=0)
    model.fit(X, y, steps=40, lamb=1e-2, progress=False)
    scores = attribution(model, X)
    threshold = float(scores.nodes[1].sort().values[2])  # drop the two weakest hidden nodes
    pruned = prune(model, X, node_threshold=threshold)
    assert sum(pruned.width[1]) == 3 and pruned.num_parameters() < model.num_parameters()
    with torch.no_grad():
        drift = (pruned(X) - model(X)).square().mean().sqrt()
        spread = model(X).std()
    # the removed edges' variation is all that changes (their means moved into the bias), and
    # a removed node's score is its edge's std relative to the output's: by the triangle
    # inequality, RMS drift <= sum of removed scores * std(output)
    removed = float(scores.nodes[1].sort().values[:2].sum())
    assert 0 < drift <= removed * (spread + 1e-4) * (1 + 1e-9)


def test_shrink_finds_the_single_hidden_node():
    X = uniform_samples(1500, 2, seed=2)
    y = torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)
    model = KAN([2, 4, 1], grid=10, seed=0, grid_eps=1.0)
    model.fit(X, y, steps=30, progress=False)
    small = shrink(model, X, y)
    assert small.width == [[2, 0], [1, 0], [1, 0]]
    small.fit(X, y, steps=20, optimizer="lm", progress=False)
    with torch.no_grad():
        assert torch.sqrt(torch.mean((small(X) - y) ** 2)) < 1e-3


def test_the_model_methods_prune_on_the_samples_of_the_last_fit():
    X = uniform_samples(300, 3, seed=3)
    y = torch.sin(2 * X[:, :1]) + X[:, 1:2] ** 2  # the third input is not used
    model = KAN([3, 4, 1], grid=5, seed=0)
    model.fit(X, y, steps=30, lamb=1e-3, progress=False)
    scores = model.attribution()  # on model.samples, which the fit kept
    reference = attribution(model, model.samples)
    assert all(torch.equal(a, b) for a, b in zip(scores.nodes, reference.nodes))
    pruned = model.prune(edge_threshold=0.05)
    assert pruned.num_parameters() < model.num_parameters() or int(pruned.layers[0].mask.sum()) < 12
    assert int(pruned.layers[0].mask[2].sum()) == 0  # every edge of the unused input is gone
    with torch.no_grad():
        assert float((pruned(X) - model(X)).square().mean().sqrt()) < 0.05 * float(y.std())
    fresh = KAN([3, 4, 1], grid=5, seed=0)
    try:
        fresh.prune()
    except ValueError as err:
        assert "samples" in str(err)
    else:
        raise AssertionError("prune without samples must say so")
