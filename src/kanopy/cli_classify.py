"""Classification in the ``kanopy`` command: which task a fit is (``--task``, ``--loss``, or
the target column's kind), ``kanopy fit`` of a classifier (:class:`kanopy.KANClassifier`:
its search, refit and labels) and ``kanopy predict``'s labels and class probabilities.
cli.py's fit and predict call it; importing it does not import PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from . import data
from .cli_app import EXIT_INTERRUPTED, UI, check_rows

TASKS = ("auto", "classify", "regress")
CLASSIFY_LOSSES = ("cross_entropy", "bce")
REGRESS_LOSSES = ("mse", "huber")
LOSSES = ("auto", *REGRESS_LOSSES, *CLASSIFY_LOSSES)


def task_of(task: str, loss: str, data_file, target: str) -> tuple[str, str | None]:
    """("classify" or "regress", why, when the target column decided): --task, else a
    classification --loss, else the target column (text labels: classify; numbers: regress).
    ValueError for a --loss that does not fit the --task."""
    if task == "classify" and loss in REGRESS_LOSSES:
        raise ValueError(f"--loss {loss} is a regression loss; with --task classify use --loss cross_entropy "
                         "or bce (or auto)")
    if task == "regress" and loss in CLASSIFY_LOSSES:
        raise ValueError(f"--loss {loss} is a classification loss; with --task regress use --loss mse or huber "
                         "(or auto)")
    if task != "auto":
        return task, None
    if loss in CLASSIFY_LOSSES:
        return "classify", None
    if loss in REGRESS_LOSSES:
        return "regress", None
    labels = data.read_labels(data_file, target)
    if labels.dtype.kind in "USO":
        return "classify", (f"the target column {target!r} holds text labels ({_examples(labels)}): classified "
                            "(--task regress refuses them, --task classify takes numeric labels)")
    return "regress", None


def fit_classifier(ui: UI, data_file, target, features, given: dict, val_frac: float, loss: str, why=None):
    """Fit a KANClassifier to the labels of column ``target`` (its defaults, or the options
    given) and return its network, the model file's notes set (task, classes, features,
    validation). Nothing is written here; notes (``why`` it classifies, the search) come after
    the fit, so that an error stays the only line."""
    from .classifier import KANClassifier

    features = features or [name for name in data.columns(data_file) if name != target]
    if target in features:
        raise ValueError(f"--features includes the target column {target!r}")
    if not features:
        raise ValueError(f"{data_file} has no feature columns besides the target {target!r}")
    X = data.read(data_file, features)
    labels = data.read_labels(data_file, target)
    check_rows(len(X), str(data_file))
    options = dict(given)
    seed = options.pop("seed", 0)
    classifier = KANClassifier(**options, loss=loss, validation_fraction=val_frac, random_state=seed)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            classifier.fit(X, labels)
    except KeyboardInterrupt:
        ui.error("interrupted; nothing saved (a classifier's fit cannot be resumed: fit it again)")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    model = classifier.model_
    classes = [c.item() if hasattr(c, "item") else c for c in classifier.classes_]
    model.info.update(features=list(features), target=target, task="classify", classes=classes,
                      val_frac=val_frac, data=Path(data_file).name, rows=len(X))
    title = escape(f"{Path(data_file).name}: classes of {target} ({len(classes)}: {_examples(classes)}) from "
                   f"{len(features)} features, {len(X)} rows")
    if why:
        ui.note(why)
    if getattr(classifier, "selection_", None):
        ui.report(_search_report(title, classifier.selection_))
    for warning in caught:
        ui.note(f"warning: {warning.message}")
    if "validation" in model.info:
        ui.note(classifier_validation_text(model.info["validation"]))
    return model


def classifier_validation_text(v: dict) -> str:
    """A classifier's validation notes (KANClassifier's, in its model file) as one line."""
    return (f"validation accuracy {v['accuracy']:.4g} (log loss {v['log_loss']:.4g}; the class frequencies: "
            f"{v['baseline_log_loss']:.4g})" + (", before the refit on every row" if v.get("refit") else ""))


def _search_report(title: str, selection: list[dict]) -> Table:
    report = Table(title=title)
    for column in ("", "candidate", "grid", "lamb", "steps", "parameters", "val accuracy", "val log loss", "seconds"):
        report.add_column(column, justify="left" if column == "candidate" else "right", no_wrap=column == "candidate")
    for c in selection:
        network = c["grid"] is not None
        report.add_row("*" if c["chosen"] else "", escape(c["label"]), str(c["grid"]) if network else "-",
                       f"{c['lamb']:g}" if network else "-", str(c["schedule"][-1][1]) if network else "-",
                       str(c["parameters"]), f"{c['val_accuracy']:.4f}", f"{c['val_loss']:.4g}", f"{c['seconds']:.2f}")
    report.caption = "* chosen: the simplest candidate not clearly worse than the best (steps: those kept)"
    return report


def predictions(model, X) -> tuple[list[str], object, object]:
    """(header, labels (N,), probabilities (N, classes)) of a classifier's model file for
    inputs X: the most probable class and one probability column ``p_<class>`` per class."""
    import torch

    classes = list(model.info["classes"])
    with torch.no_grad():
        logits = model(X).double()
        if logits.shape[1] == 1:  # one logit: the second class's log-odds
            p = torch.sigmoid(logits)
            probabilities = torch.cat([1 - p, p], dim=1)
        else:
            probabilities = torch.softmax(logits, dim=1)
    index = probabilities.argmax(dim=1).numpy()
    labels = [classes[i] for i in index]
    return ["label", *(f"p_{c}" for c in classes)], labels, probabilities.numpy()


def _examples(labels, shown: int = 3) -> str:
    """The first few distinct labels in sorted order, as text."""
    distinct = sorted({str(v) for v in list(labels)})
    return ", ".join(distinct[:shown]) + (", ..." if len(distinct) > shown else "")
