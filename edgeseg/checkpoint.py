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

from edgeseg.core.artifact import ArtifactError, sha256
from edgeseg.core.errors import InputError
from edgeseg.data.classes import ClassSet
from edgeseg.data.transforms import Preprocess
from edgeseg.models import create_model
from edgeseg.models.deploy import DeployModel

FORMAT = "edgeseg-checkpoint"
VERSION = 1


class CheckpointError(InputError):
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


def build_reference(meta_model: dict, input_meta: dict, output_kind: str):
    """The PyTorch deploy module an artifact must match, rebuilt from its meta. BatchNorm is
    left unfolded, so a folding error shows up as a parity failure."""
    import torch


    source = meta_model["source"]
    if source == "import":
        raise ArtifactError("an imported artifact has no PyTorch model to compare with; its "
                            "meta.json records ONNX Runtime vs OpenVINO agreement at import")
    if source == "checkpoint":
        path = Path(meta_model["checkpoint"])
        if not path.is_file():
            raise ArtifactError(f"the artifact's checkpoint {path} is gone; parity needs it")
        if meta_model.get("checkpoint_sha256") not in (None, sha256(path)):
            raise ArtifactError(f"{path} changed since export (sha256 differs); re-export")
        model, _, _ = model_from_checkpoint(path)
    else:
        torch.manual_seed(meta_model["init_seed"])
        model = create_model(meta_model["name"], num_classes=meta_model["num_classes"],
                             **meta_model["options"])
    return DeployModel(model.eval(), output=output_kind,
                       fuse_preprocess=input_meta["fused_preprocess"], mean=input_meta["mean"],
                       std=input_meta["std"], net_color=input_meta["network_color"],
                       frame_color=input_meta["color"], fold_bn=False).eval()
