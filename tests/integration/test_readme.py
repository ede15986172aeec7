"""Every ```python block of README.md runs as written, in order, in one namespace (a later
block uses the names an earlier one made), in a scratch folder (the blocks save files)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"



def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    assert len(python_blocks(README.read_text())) >= 4


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the blocks' own warnings (e.g. a tiny fixed schedule) are not failures
        for number, block in enumerate(python_blocks(README.read_text()), start=1):
            try:
                exec(compile(block, f"README.md python block {number}", "exec"), namespace)
            except Exception as err:  # name the block that failed
                raise AssertionError(f"README python block {number} failed: {err!r}\n{block}") from err
    # what the blocks promise in their comments
    assert (tmp_path / "toy.kan").exists() and (tmp_path / "net.png").exists()
    assert float(namespace["result"].rmse) < 1e-3
    assert {str(s) for s in namespace["result"].expr.free_symbols} == {"x", "y"}
