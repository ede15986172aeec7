"""Model files: safetensors tensors plus JSON metadata. No pickle, ever.

A model file holds
* every parameter and buffer of the model (bit-exact),
* ``__metadata__``: ``format`` = "kanopy", ``format_version``, ``kanopy_version``, the
  architecture (``config``, JSON; its ``kind`` says which model class reads it: absent for
  a KAN, "multistage" for a :class:`~kanopy.multistage.MultiStageKAN`) and, when saved,
  the optimizer state needed to resume a fit (``fit_state``, JSON for numbers; its tensors
  are stored under ``fit_state/...``) and
  ``info`` (JSON object, optional): what the model was fitted on and how (feature names,
  target, recipe), kept in ``model.info``.

Writing is atomic (a temporary file in the same folder, then a rename), so a failed or
interrupted save never leaves a half-written model. Loading checks the file before building
anything and refuses, with a ValueError naming the problem, files that are not kanopy
models: truncated, another format, pickles (which are never unpickled), unknown versions.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ._version import __version__

FORMAT = "kanopy"
FORMAT_VERSION = 2  # the newest this kanopy reads; 1: a KAN, 2: adds multi-stage models
_FIT_PREFIX = "fit_state/"
_MAX_HEADER = 100 * 1024 * 1024


class ModelFileError(ValueError):
    """A file that cannot be read as a kanopy model (a ValueError).

    Raised by :func:`kanopy.load` for missing, truncated, damaged or foreign files, pickles
    (never unpickled) and unsupported format versions; the message names the file and the
    problem.

    Examples
    --------
    >>> import kanopy
    >>> try:
    ...     kanopy.load("no-such-file.kan")
    ... except kanopy.ModelFileError as err:
    ...     print(err)
    no-such-file.kan: no such model file
    >>> issubclass(kanopy.ModelFileError, ValueError)
    True
    """


def save_model(model, path, include_fit_state: bool = True) -> None:
    path = Path(path)
    tensors = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    config = model.config()
    metadata = {
        "format": FORMAT,
        "format_version": str(_version_needed(config)),
        "kanopy_version": __version__,
        "config": json.dumps(config),
    }
    if include_fit_state and model.fit_state:
        numbers, fit_tensors = _split_fit_state(model.fit_state)
        metadata["fit_state"] = json.dumps(numbers)
        tensors.update({_FIT_PREFIX + k: v for k, v in fit_tensors.items()})
    info = getattr(model, "info", None)
    if info:
        metadata["info"] = json.dumps(info)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_model(path, kinds: dict, device="cpu"):
    """The model in the file at ``path``, built by the class that ``kinds`` maps its config's
    ``kind`` to (None: a KAN); the classes are passed in, so that this module imports no model
    (``kanopy.load`` passes every model class of the package)."""
    path = Path(path)
    metadata, tensors = _read(path)
    try:
        config = json.loads(metadata["config"])
        model = _model_class(config, kinds).from_config(config, device=device)
        state = {k: v for k, v in tensors.items() if not k.startswith(_FIT_PREFIX)}
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: inconsistent kanopy model file ({_short(err)})") from None
    if "fit_state" in metadata:
        fit_tensors = {k[len(_FIT_PREFIX):]: v for k, v in tensors.items() if k.startswith(_FIT_PREFIX)}
        model.fit_state = _join_fit_state(json.loads(metadata["fit_state"]), fit_tensors)
    model.info = _info(metadata, path)
    return model.to(device)


def _version_needed(config: dict) -> int:
    """The oldest format version that describes this model (plain KANs stay readable by
    kanopy versions that read only version 1)."""
    return 1 if config.get("kind") is None else 2


def _model_class(config: dict, kinds: dict):
    """The class that builds a model from its config, by ``kind`` (ValueError if unknown)."""
    if not isinstance(config, dict):
        raise ValueError("config is not a JSON object")
    kind = config.get("kind")
    if kind not in kinds:
        raise ValueError(f"unknown model kind {kind!r}")
    return kinds[kind]


def read_metadata(path) -> dict:
    """The JSON metadata of a kanopy model file (checked like ``load_model``), decoded:
    format_version, kanopy_version, config, info and, when saved, fit_state (numbers only)."""
    path = Path(path)
    metadata, _ = _read(path)
    try:
        out = {"format_version": int(metadata["format_version"]), "kanopy_version": metadata.get("kanopy_version"),
               "config": json.loads(metadata["config"]), "info": _info(metadata, path)}
        if "fit_state" in metadata:
            out["fit_state"] = json.loads(metadata["fit_state"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: inconsistent kanopy model file ({_short(err)})") from None
    return out


def _info(metadata: dict, path: Path) -> dict:
    try:
        info = json.loads(metadata.get("info", "{}"))
    except ValueError as err:
        raise ModelFileError(f"{path}: inconsistent kanopy model file (info: {_short(err)})") from None
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: inconsistent kanopy model file (info is not a JSON object)")
    return info


def _read(path: Path) -> tuple[dict, dict]:
    """(metadata, tensors) of a kanopy model file, after checking it is one."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    with open(path, "rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if not (0 < header_len <= min(size - 8, _MAX_HEADER) and head[8:9] == b"{"):
        if (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or head[:2] == b"PK":
            raise ModelFileError(f"{path}: this is a pickle (or a torch.save archive), not a kanopy model file; "
                                 "kanopy never unpickles files, so it was refused")
        raise ModelFileError(f"{path}: not a kanopy model file (no safetensors header: truncated or another "
                             f"format, {size} bytes)")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ModelFileError(f"{path}: a safetensors file, but not a kanopy model (no kanopy metadata)")
            version = metadata.get("format_version", "")
            if not version.isdigit() or int(version) > FORMAT_VERSION:
                raise ModelFileError(f"{path}: kanopy model format version {version!r} is not supported "
                                     f"by this kanopy (reads up to {FORMAT_VERSION}); upgrade kanopy")
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except ModelFileError:
        raise
    except Exception as err:  # safetensors reports corruption in its own exception types
        raise ModelFileError(f"{path}: damaged or truncated model file ({_short(err)})") from None
    return metadata, tensors


def atomic_write(path, write) -> None:
    """write(tmp_path) into a temporary file beside path, then rename it over path: readers
    see the old file or the complete new one, never a part (also on errors and Ctrl-C)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(path)
    try:
        mode = tmp.stat().st_mode & 0o777
        write(tmp)
        os.chmod(tmp, mode)  # some writers (safetensors) make their file private to the user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_file(path: Path) -> Path:
    """A new empty file beside path, with the permissions of any new file (umask applies;
    tempfile.mkstemp would make it private to the user)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # pragma: no cover (48 random bits)
            continue


def _split_fit_state(state: dict) -> tuple[dict, dict]:
    """Optimizer state -> (JSON-able numbers, flat dict of tensors)."""
    numbers, tensors = {}, {}

    def walk(value, key):
        if isinstance(value, torch.Tensor):
            tensors[key] = value.detach().contiguous().cpu()
            return {"__tensor__": key}
        if isinstance(value, dict):
            return {k: walk(v, f"{key}.{k}" if key else k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(value)]
        return value

    numbers = walk(state, "")
    return numbers, tensors


def _join_fit_state(numbers, tensors: dict):
    if isinstance(numbers, dict):
        if set(numbers) == {"__tensor__"}:
            return tensors[numbers["__tensor__"]]
        return {k: _join_fit_state(v, tensors) for k, v in numbers.items()}
    if isinstance(numbers, list):
        return [_join_fit_state(v, tensors) for v in numbers]
    return numbers


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]
