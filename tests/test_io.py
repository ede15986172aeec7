"""Model files: bit-exact round trips; anything that is not a kanopy model is refused."""

import json
import os
import pickle
import struct

import pytest
import torch
from conftest import uniform_samples
from safetensors.torch import save_file

import kanopy
from kanopy import KAN, ModelFileError


def trained(tmp_path):
    model = KAN([2, [2, 1], 1], grid=4, seed=0)
    X = uniform_samples(100, 2, seed=1)
    model.fit(X, X[:, :1] * X[:, 1:], steps=3, progress=False)
    model.refine(6)
    model.fit(X, X[:, :1] * X[:, 1:], steps=2, progress=False)
    path = tmp_path / "model.kan"
    model.save(path)
    return model, path, X


def test_round_trip_is_bit_exact(tmp_path):
    model, path, X = trained(tmp_path)
    loaded = kanopy.load(path)
    assert loaded.config() == model.config()
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))
    assert loaded.fit_state["step"] == model.fit_state["step"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.kan"]  # no temporary files left


class Payload:
    """Unpickling this would create a file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.kan"
    evil.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelFileError, match="pickle"):
        kanopy.load(evil)
    assert not marker.exists()


def test_truncated_and_foreign_files_are_refused(tmp_path):
    _, path, _ = trained(tmp_path)
    data = path.read_bytes()
    cases = {
        "half.kan": data[: len(data) // 2],
        "header.kan": data[:20],
        "empty.kan": b"",
        "text.kan": b"hello, this is not a model",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelFileError):
            kanopy.load(tmp_path / name)
    with pytest.raises(ModelFileError, match="no such"):
        kanopy.load(tmp_path / "missing.kan")


def test_other_safetensors_and_unknown_versions_are_refused(tmp_path):
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.kan"), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not a kanopy model"):
        kanopy.load(tmp_path / "other.kan")
    _, path, _ = trained(tmp_path)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["format_version"] = "99"
    new_header = json.dumps(header).encode()
    (tmp_path / "future.kan").write_bytes(struct.pack("<Q", len(new_header)) + new_header + data[8 + n :])
    with pytest.raises(ModelFileError, match="version '99'"):
        kanopy.load(tmp_path / "future.kan")


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    model, path, _ = trained(tmp_path)
    before = path.read_bytes()
    import kanopy.io as io

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(io, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.kan"]


def test_model_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        KAN([1, 1], grid=3).save(tmp_path / "m.kan")
    finally:
        os.umask(old)
    assert (tmp_path / "m.kan").stat().st_mode & 0o777 == 0o644


def test_the_input_bound_and_what_the_model_was_fitted_on_survive_a_round_trip(tmp_path):
    model = KAN([2, 1], grid=3, seed=0, input_bound=1.1)
    model.info = {"validation": {"rmse": 0.25, "baseline_rmse": 1.0, "r2": 0.9375},
                  "selection": [{"label": "linear", "chosen": True, "schedule": []}]}
    model.save(tmp_path / "m.kan")
    loaded = kanopy.load(tmp_path / "m.kan")
    assert loaded.input_bound == 1.1 and loaded.info == model.info
    assert kanopy.io.read_metadata(tmp_path / "m.kan")["info"]["validation"]["rmse"] == 0.25
