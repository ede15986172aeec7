"""The lazy build of the fused kernels: what it says, what it is keyed by, bad settings."""

import pytest
import torch.utils.cpp_extension

from kanopy import _extension


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """ops() as in a new process with an empty cache; the compiler itself is stubbed out."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("KANOPY_NO_EXTENSION", raising=False)
    monkeypatch.setattr(_extension, "_state", {})
    builds = []
    monkeypatch.setattr(torch.utils.cpp_extension, "load", lambda **options: builds.append(options))
    return builds


def test_the_first_build_says_what_it_does_and_how_long_it_takes(fresh_build, monkeypatch, capsys):
    monkeypatch.setenv("KANOPY_MARCH", "x86-64-v3")
    _extension.ops()
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "compiling the fused CPU kernels for AVX2 (32-byte vectors), once" in err
    assert f"about {_extension.BUILD_SECONDS} s" in err
    assert "-march=x86-64-v3" in fresh_build[0]["extra_cflags"]

    # once built (the library in the cache), a new process loads it as it is, without the
    # build step (whose lock a killed build leaves behind), and says nothing
    name = fresh_build[0]["name"]
    library = _extension.cache_dir() / name.rsplit("_", 1)[1] / f"{name}.so"
    library.write_bytes(b"")
    loaded = []
    monkeypatch.setattr(torch.ops, "load_library", loaded.append)
    (library.parent / "lock").write_bytes(b"")  # a killed build's
    monkeypatch.setattr(_extension, "_state", {})
    _extension.ops()
    assert capsys.readouterr().err == ""
    assert loaded == [str(library)] and len(fresh_build) == 1  # loaded, not rebuilt


def test_a_library_that_does_not_load_is_built_again(fresh_build, monkeypatch, capsys):
    name = f"kanopy_spline_{_extension._build_key(_extension.cflags(*_extension.build_options()))}"
    library = _extension.cache_dir() / name.rsplit("_", 1)[1] / f"{name}.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"not a library")  # e.g. a link cut short
    _extension.ops()
    assert "compiling the fused CPU kernels" in capsys.readouterr().err
    assert [build["name"] for build in fresh_build] == [name]


def test_forced_width_and_target_are_part_of_the_cache_key(fresh_build, monkeypatch):
    names = []
    for march, simd in (("native", None), ("native", "16"), ("x86-64-v3", None), ("x86-64-v3", "16")):
        monkeypatch.setenv("KANOPY_MARCH", march)
        if simd:
            monkeypatch.setenv("KANOPY_SIMD_BYTES", simd)
        else:
            monkeypatch.delenv("KANOPY_SIMD_BYTES", raising=False)
        monkeypatch.setattr(_extension, "_state", {})
        _extension.ops()
        names.append(fresh_build[-1]["name"])
    assert len(set(names)) == 4
    assert "-DKANOPY_SIMD_BYTES=16" in fresh_build[1]["extra_cflags"]


@pytest.mark.parametrize("variable,value,match", [
    ("KANOPY_SIMD_BYTES", "24", "KANOPY_SIMD_BYTES must be one of 16, 32, 64, got '24'"),
    ("KANOPY_MARCH", "native; rm -rf", "KANOPY_MARCH must name a compiler target"),
])
def test_bad_build_settings_are_named_and_the_torch_kernels_used(fresh_build, monkeypatch, variable, value, match):
    monkeypatch.setenv(variable, value)
    with pytest.warns(RuntimeWarning, match=match):
        assert _extension.ops() is None
    assert not fresh_build


def test_every_header_is_part_of_the_cache_key(tmp_path, monkeypatch):
    """The key covers every header of csrc/ (the split core included): editing any one of them
    changes it, so a stale build is never loaded."""
    headers = {path.name for path in _extension.CSRC.glob("*.h")}
    assert {path.name for path in _extension.HEADERS} == headers
    assert {"spline_core.h", "basis.h", "forward.h", "backward.h", "simd.h"} <= headers
    copies = []
    for header in _extension.HEADERS:
        copies.append(tmp_path / header.name)
        copies[-1].write_bytes(header.read_bytes())
    monkeypatch.setattr(_extension, "HEADERS", copies)
    before = _extension._build_key(["-O3"])
    for copy in copies:
        text = copy.read_bytes()
        copy.write_bytes(text + b"\n// edited\n")
        assert _extension._build_key(["-O3"]) != before, copy.name
        copy.write_bytes(text)
    assert _extension._build_key(["-O3"]) == before
