"""`kanopy fit` on class labels and `kanopy predict` of labels and probabilities: the same
classifier as the library's KANClassifier, the task told by the target column or --task,
and bad input refused in one line with nothing written."""

import csv

import numpy as np
import pytest
from test_cli import refused, run, write_csv

from kanopy import KANClassifier

FIXED = ["--width", "none", "--grids", "3", "--steps", "5"]  # a fixed schedule: seconds, no search


def three_classes(n=120, seed=0):
    """Three classes of points in the plane, by sector around the origin."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    sector = ((np.arctan2(X[:, 1], X[:, 0]) + np.pi) / (2 * np.pi / 3)).astype(int).clip(max=2)
    return X, np.array(["east", "north", "west"])[sector]


def labelled_csv(path, X, labels):
    return write_csv(path, ["x1", "x2", "kind"], [(a, b, str(c)) for (a, b), c in zip(X, labels)])


def read_table(text):
    rows = list(csv.reader(text.splitlines()))
    return rows[0], [r[0] for r in rows[1:]], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


def test_text_labels_classify_and_predict_writes_labels_and_probabilities_as_the_library(tmp_path):
    X, labels = three_classes()
    data = labelled_csv(tmp_path / "train.csv", X, labels)
    fitted = run("fit", data, "--target", "kind", *FIXED, "--out", tmp_path / "m.kan")
    assert fitted.exit_code == 0, fitted.output
    assert "holds text labels (east, north, west" in fitted.stderr and "classified" in fitted.stderr
    predicted = run("predict", tmp_path / "m.kan", data)
    assert predicted.exit_code == 0, predicted.output
    header, got_labels, probabilities = read_table(predicted.stdout)
    assert header == ["label", "p_east", "p_north", "p_west"]
    library = KANClassifier(hidden=(), grids=(3,), steps=5, random_state=0).fit(X, labels)
    assert got_labels == list(library.predict(X))
    np.testing.assert_allclose(probabilities, library.predict_proba(X), rtol=1e-12, atol=1e-15)
    assert np.mean(np.array(got_labels) == labels) > 0.9
    out = run("predict", tmp_path / "m.kan", data, "--out", tmp_path / "p.csv")
    assert out.exit_code == 0 and (tmp_path / "p.csv").read_text() == predicted.stdout
    info = run("info", tmp_path / "m.kan")
    assert info.exit_code == 0 and "east, north, west" in info.stdout and "a classifier" in info.stdout


def test_numeric_labels_classify_with_task_and_numbers_regress_by_default(tmp_path):
    X, labels = three_classes(90, seed=1)
    codes = np.searchsorted(np.unique(labels), labels) * 10  # 0, 10, 20
    data = labelled_csv(tmp_path / "train.csv", X, codes)
    classified = run("fit", data, "--target", "kind", "--task", "classify", *FIXED, "--out", tmp_path / "c.kan")
    assert classified.exit_code == 0
    header, got, _ = read_table(run("predict", tmp_path / "c.kan", data).stdout)
    assert header == ["label", "p_0", "p_10", "p_20"] and set(got) <= {"0", "10", "20"}
    regressed = run("fit", data, "--target", "kind", *FIXED, "--out", tmp_path / "r.kan")  # numbers: regression
    assert regressed.exit_code == 0
    header, _, _ = read_table(run("predict", tmp_path / "r.kan", data).stdout)
    assert header == ["prediction"]


def test_the_default_search_classifies_with_a_validation_accuracy(tmp_path):
    X, labels = three_classes(150, seed=2)
    data = labelled_csv(tmp_path / "train.csv", X, labels)
    fitted = run("fit", data, "--target", "kind", "--out", tmp_path / "m.kan")
    assert fitted.exit_code == 0, fitted.output
    assert "logistic" in fitted.stdout and "validation accuracy" in fitted.stderr
    info = run("info", tmp_path / "m.kan")
    assert "validation accuracy" in info.stdout


BAD = {  # name: (labels of the rows or None for three classes, arguments, fragments of the message)
    "one class only": (["same"] * 30, [], ["one class only ('same')"]),
    "text target for a regression": (None, ["--task", "regress"], ["'east' at row 1", "must hold numbers",
                                                                   "--task classify"]),
    "lm with cross-entropy": (None, ["--optimizer", "lm"], ["optimizer 'lm' minimises a sum of squares",
                                                           "'cross_entropy'"]),
    "bce for three classes": (None, ["--loss", "bce"], ["loss='bce' is for two classes, but y has 3"]),
    "regression loss for classes": (None, ["--task", "classify", "--loss", "huber"], ["--loss huber is a regression"]),
    "classification loss for a regression": (None, ["--task", "regress", "--loss", "cross_entropy"],
                                             ["--loss cross_entropy is a classification loss"]),
    "missing label": ([""] + ["a", "b"] * 15, [], ["missing label at row 1 (line 2), column 'kind'"]),
    "NaN label": (["nan"] + ["1", "2"] * 15, ["--task", "classify"], ["NaN at row 1 (line 2), column 'kind'"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_classification_input_is_one_line_and_writes_nothing(tmp_path, case):
    labels, args, fragments = BAD[case]
    X, default = three_classes(31, seed=3)
    data = labelled_csv(tmp_path / "d.csv", X[: len(labels or default)], default if labels is None else labels)
    refused(run("fit", data, "--target", "kind", *FIXED, *args, "--out", tmp_path / "m.kan"), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_a_classifier_cannot_be_resumed(tmp_path):
    X, labels = three_classes(60, seed=4)
    data = labelled_csv(tmp_path / "train.csv", X, labels)
    assert run("fit", data, "--target", "kind", *FIXED, "--out", tmp_path / "m.kan").exit_code == 0
    refused(run("fit", data, "--resume", tmp_path / "m.kan", *FIXED), "is a classifier", "drop --resume")
    refused(run("fit", data, "--target", "kind", "--task", "classify", "--resume", tmp_path / "m.kan"),
            "a classifier is fitted again")
