"""Published checkpoints into edgeseg checkpoints (`edgeseg convert --from SOURCE CKPT`).

A source module (edgeseg/convert/<source>.py) maps one repository's state-dict layout onto an
edgeseg model: it recognises the variant from the tensors it is given (backbone, output
stride, head), renames every tensor it uses, and lists every tensor it drops (auxiliary
heads, optimizer state) with the reason. This module checks the rest: no tensor is left
unaccounted for, shapes match, the model loads strictly, and the result is an ordinary
edgeseg checkpoint (model, classes, preprocessing, weights) that export, quantize, eval and
segment take. Files are read with `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.checkpoint import load_state, save_checkpoint
from edgeseg.core.artifact import sha256
from edgeseg.core.errors import InputError, MissingInput, UsageError
from edgeseg.data.classes import ClassSet
from edgeseg.data.transforms import Preprocess
from edgeseg.models import create_model

# source name -> (its module: edgeseg/convert/<module>.py, or a dotted path; what it reads)
SOURCES: dict[str, tuple[str, str]] = {
    "coincheung-bisenet": ("coincheung_bisenet", "CoinCheung/BiSeNet: BiSeNetV1 (ResNet-18) "
                           "and BiSeNetV2, Cityscapes and COCO-Stuff"),
    "vainf-deeplabv3plus": ("vainf_deeplabv3plus", "VainF/DeepLabV3Plus-Pytorch: MobileNetV2, "
                            "ResNet-50/101, output stride 8/16, Cityscapes and VOC"),
    "mmseg": ("mmseg", "open-mmlab/mmsegmentation: BiSeNetV1 R-18, BiSeNetV2, DeepLabV3+ "
              "R-50/101-D8 and ICNet R-18/50/101-D8, Cityscapes"),
}


class ConversionError(InputError):
    """A checkpoint that is not what the source says it is: the message names what was
    expected and what was found."""


@dataclass
class Converted:
    """What a source's `convert(state_dict, **hints)` returns."""
    model: str  # registry name
    options: dict[str, Any]
    classes: ClassSet
    preprocess: Preprocess
    state_dict: dict[str, Any]  # our key -> tensor
    used: set[str] = field(default_factory=set)  # source keys that went into state_dict
    dropped: dict[str, str] = field(default_factory=dict)  # source key -> why
    variant: str = ""  # what was recognised, for messages and the checkpoint
    published: dict[str, Any] = field(default_factory=dict)  # the source's own figures

    def take(self, key: str, tensor: Any, modules: dict[str, str]) -> None:
        """Use their tensor `key` under our name (map_key) when its module is mapped."""
        ours = map_key(key, modules)
        if ours is not None:
            self.state_dict[ours] = tensor
            self.used.add(key)


def load_tensors(path: str | Path, unwrap: tuple[str, ...] = ("state_dict", "model")) -> dict:
    """The state dict in a published checkpoint file: read with weights_only=True (a pickle
    that needs code is refused), unwrapped from the usual {"state_dict": ...} containers."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ConversionError(f"{path}: refused: loading it would run code from the file "
                              f"(weights_only=True: {str(e).splitlines()[0]}); save its "
                              "state_dict alone with torch.save(model.state_dict(), ...)") from None
    except (RuntimeError, OSError, EOFError, ValueError, struct.error) as e:
        raise ConversionError(f"{path}: not a loadable PyTorch checkpoint, or truncated "
                              f"({e})") from None
    for key in unwrap:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(hasattr(v, "shape")
                                                       for v in obj.values()):
        raise ConversionError(f"{path}: no state dict of tensors inside (keys: "
                              f"{list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def source_module(name: str):
    if name not in SOURCES:
        raise UsageError(f"unknown convert source {name!r}; known: "
                         + ", ".join(f"{n} ({s})" for n, (_, s) in sorted(SOURCES.items())))
    module = SOURCES[name][0]
    return importlib.import_module(module if "." in module else f"edgeseg.convert.{module}")


def recognise(state: dict[str, Any], signatures: dict[str, tuple[str, ...]],
              names: dict[str, str], what: str, *, model: str | None = None,
              one: str = "") -> str:
    """The one architecture whose signature tensors are all in `state`; else a
    ConversionError naming each architecture's signature (`what`: which checkpoints). With
    `model` (the user's expectation) it must be that one; `one` words a single checkpoint of
    the source, with {name} for the architecture's name."""
    found = [arch for arch, keys in signatures.items() if all(k in state for k in keys)]
    if len(found) != 1:
        expected = "; ".join(f"{names[a]}: {', '.join(k)}" for a, k in signatures.items())
        raise ConversionError(f"not {what}: expected the tensors of {expected}; found "
                              f"{len(state)} tensors ({', '.join(sorted(state)[:5])}, ...)")
    arch = found[0]
    if model is not None and model != arch:
        raise ConversionError(f"expected {one.format(name=names.get(model, model))}, but its "
                              f"tensors are {names[arch]}'s (e.g. {signatures[arch][0]})")
    return arch


def check_hints(source: str, hints: dict[str, Any]) -> None:
    """Refuse hints a source's convert() does not take, naming the ones it does."""
    takes = [p for p in inspect.signature(source_module(source).convert).parameters
             if p != "state"]
    unknown = sorted(set(hints) - set(takes))
    if unknown:
        raise UsageError(f"{source} takes the hints {' and '.join(f'{t}=' for t in takes)}, "
                         f"not {', '.join(unknown)}")


def map_key(key: str, modules: dict[str, str]) -> str | None:
    """Our name for their tensor `key`: its module renamed through `modules` (theirs ->
    ours), or, for a conv+bn pair of theirs, its parent's; None when neither is mapped."""
    module, _, leaf = key.rpartition(".")
    parent, _, child = module.rpartition(".")
    if module in modules:
        return f"{modules[module]}.{leaf}"
    if parent in modules and child in ("conv", "bn"):
        return f"{modules[parent]}.{child}.{leaf}"
    return None


def complete(out: Converted, modules: dict[str, str], what: str) -> None:
    """Fill BatchNorm counters a file saved without (they only matter for momentum=None),
    then refuse, in the source's own names, any tensor our model still lacks."""
    import torch

    expected = create_model(out.model, num_classes=out.classes.num_classes,
                            **out.options).state_dict()
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in out.state_dict:
            out.state_dict[key] = torch.zeros((), dtype=torch.long)
    reverse = {ours: theirs for theirs, ours in modules.items()}
    missing = [map_key(k, reverse) or k for k in expected if k not in out.state_dict]
    if missing:
        raise ConversionError(f"{what}: {len(missing)} expected tensor(s) missing "
                              f"({', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''})")


def published() -> list[dict[str, Any]]:
    """Every source's published checkpoints with the figures it reports, source first."""
    return [{"source": name, **row} for name in sorted(SOURCES)
            for row in source_module(name).published()]


def release_figures(conv: Converted, rows: list[dict[str, Any]], file_name: str) -> None:
    """When the file keeps its released name, record that release's figures: a source
    publishes several files of one layout (schedules, pretraining) with different mIoU, and
    without the name a source can only give the first one's."""
    layout = conv.variant.split(",")[0]  # e.g. "ICNet R-50-D8": a row of another depth
    for row in rows:                      # under this name is not this file's release
        if ((row["file"], row["model"], row["classes"]) == (file_name, conv.model,
                                                             conv.classes.name)
                and row["variant"].startswith(layout)):
            if row["file"] == conv.published.get("released_as"):
                return  # the source's own figures are this release's
            conv.published.pop("miou_percent", None)  # another release's
            conv.published.update(val_miou=row["miou"], released_as=row["file"],
                                  release=row["variant"], matched_by="file name")
            return


def check(conv: Converted, source: dict[str, Any], where: str):
    """Every source tensor used or dropped with a reason, and the model loads strictly."""
    left = sorted(set(source) - conv.used - set(conv.dropped))
    if left:
        raise ConversionError(f"{where}: {len(left)} tensor(s) of the checkpoint are neither "
                              f"converted nor known to be droppable ({', '.join(left[:6])}"
                              f"{', ...' if len(left) > 6 else ''}): not a {conv.variant} "
                              "checkpoint of this source")
    model = create_model(conv.model, num_classes=conv.classes.num_classes, **conv.options)
    load_state(model, conv.state_dict, where)  # strict: names and shapes
    return model.eval()


def convert(source: str, checkpoint: str | Path, out: str | Path, *,
            log: Callable[[str], None] = print, **hints) -> Path:
    """Convert `checkpoint` (a file published by `source`) into an edgeseg checkpoint at
    `out`; `hints` go to the source (e.g. classes=, when the file cannot tell)."""
    module = source_module(source)
    check_hints(source, hints)
    tensors = load_tensors(checkpoint, getattr(module, "UNWRAP", ("state_dict", "model")))
    conv: Converted = module.convert(tensors, **hints)
    check(conv, tensors, str(checkpoint))
    release_figures(conv, getattr(module, "published", list)(), Path(checkpoint).name)
    save_checkpoint(out, {
        "model": {"name": conv.model, "options": conv.options,
                  "num_classes": conv.classes.num_classes},
        "classes": conv.classes.to_dict(), "preprocess": conv.preprocess.to_dict(),
        "train": None, "iteration": None, "metrics": conv.published,
        "converted_from": {"source": source, "file": Path(checkpoint).name,
                           "sha256": sha256(Path(checkpoint)), "variant": conv.variant,
                           "dropped": conv.dropped},
        "state_dict": conv.state_dict})
    log(f"converted {Path(checkpoint).name} ({source}: {conv.variant}) -> {out}: "
        f"{len(conv.used)} tensors used, {len(conv.dropped)} dropped "
        f"({', '.join(sorted(set(conv.dropped.values()))) or 'none'})")
    return Path(out)
