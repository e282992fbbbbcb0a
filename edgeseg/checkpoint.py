"""Training checkpoints: a `torch.save` dict of plain types and tensors (loads with
`weights_only=True`), with everything needed to rebuild and use the model.

    {"format": "edgeseg-checkpoint", "version": 1,
     "model": {"name", "options", "num_classes"}, "classes": ClassSet dict,
     "preprocess": Preprocess dict, "train": config dict, "iteration": int,
     "metrics": {"val_miou", ...}, "state_dict": ..., "optimizer": ... (optional)}
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path
from typing import Any

FORMAT = "edgeseg-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a crash mid-write never replaces a good checkpoint."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError,
            struct.error) as e:
        raise CheckpointError(f"{path}: not a loadable checkpoint ({e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an edgeseg checkpoint (no format={FORMAT!r} key)")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt['version']} is newer than this "
                              f"edgeseg reads ({VERSION}); upgrade edgeseg")
    return ckpt


def load_state(model, state_dict: dict[str, Any], source: str = "checkpoint") -> None:
    """Load weights strictly; on any mismatch raise an error listing the keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing from the checkpoint", missing),
                            ("not in the model", unexpected), ("shape mismatch", shapes)):
            if keys:
                more = f" (+{len(keys) - 8} more)" if len(keys) > 8 else ""
                parts.append(f"{label} [{len(keys)}]: {', '.join(keys[:8])}{more}")
        raise CheckpointError(f"{source} does not match {type(model).__name__}: "
                              + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path, source: str | None = None):
    """Rebuild (model in eval mode, ClassSet, Preprocess) from a checkpoint or its path."""
    from edgeseg.data.classes import ClassSet
    from edgeseg.data.transforms import Preprocess
    from edgeseg.models import create_model

    if not isinstance(ckpt, dict):
        source = source or str(ckpt)
        ckpt = read_checkpoint(ckpt)
    source = source or "checkpoint"
    try:
        spec = ckpt["model"]
        model = create_model(spec["name"], num_classes=int(spec["num_classes"]),
                             **spec.get("options", {}))
        classes = ClassSet.from_dict(ckpt["classes"], source=source)
        preprocess = Preprocess.from_dict(ckpt["preprocess"])
    except KeyError as e:
        raise CheckpointError(f"{source}: checkpoint lacks {e}") from None
    load_state(model, ckpt["state_dict"], source)
    return model.eval(), classes, preprocess
