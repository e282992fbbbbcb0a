"""`edgeseg export` and `edgeseg compare`: a model to a verified artifact directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.backends import is_available, write_format
from edgeseg.backends import model_file as backend_model_file
from edgeseg.backends.onnxruntime.quantizer import to_float16
from edgeseg.checkpoint import build_reference, model_from_checkpoint, read_checkpoint
from edgeseg.core.artifact import ArtifactError, new_meta, read_meta, sha256, write_meta
from edgeseg.core.capabilities import CPU_ENGINES, FORMATS
from edgeseg.core.compare import ParityError, compare_outputs
from edgeseg.core.errors import UsageError
from edgeseg.core.memory import check_size
from edgeseg.core.preprocess import graph_input, input_preprocess  # noqa: F401 (re-exported)
from edgeseg.core.shapes import (
    DYNAMIC_KINDS,
    check_range,
    default_range,
    dynamic_batch,
    graph_dims,
    size_range,
)
from edgeseg.data.classes import CITYSCAPES, ClassSet
from edgeseg.data.datasets import open_dataset
from edgeseg.data.io import atomic_output_dir
from edgeseg.data.transforms import Preprocess
from edgeseg.export.onnx import export_onnx, graph_opset, op_counts, simplify
from edgeseg.export.parity import THRESHOLDS, run_backend
from edgeseg.models import create_model
from edgeseg.models.deploy import OUTPUT_KINDS, DeployModel, label_dtype

FP16_BLOCK = ("Softmax", "ReduceMean", "LayerNormalization")


@dataclass(frozen=True)
class ExportConfig:
    out: str
    model: str | None = None  # taken from the checkpoint when omitted
    checkpoint: str | None = None
    size: tuple[int, int] = (512, 1024)
    output: str = "logits"
    fuse_preprocess: bool = False
    color: str = "RGB"
    opset: int = 17
    dynamic: str | None = None  # None | "batch" | "size" (batch, height and width)
    size_range: tuple[tuple[int, int], tuple[int, int]] | None = None  # "size": (min, max)
    simplify: bool = True
    num_classes: int = 19  # for a randomly initialised registry model
    model_options: dict[str, Any] = field(default_factory=dict)
    init_seed: int = 0
    precision: str = "fp32"  # fp32 | fp16 (FP16 weights and math, FP32 inputs and outputs)
    # op types kept in FP32 in an FP16 graph: a softmax's exponentials and the sums of
    # squares in a mean or a LayerNorm overflow FP16's 65504 (SegFormer's attention and
    # LayerNorms; global pooling over a large map)
    fp16_block: tuple[str, ...] = FP16_BLOCK
    formats: tuple[str, ...] = ("onnx",)  # core/capabilities.FORMATS
    parity_backends: tuple[str, ...] = CPU_ENGINES
    parity_inputs: int = 3
    data: str | None = None  # real images (and labels) for the parity check
    force: bool = False


def parity_inputs(meta: dict, n: int, data: str | None, seed: int = 0):
    """(inputs in the graph's format, labels or None): random images, or real val images.
    A dynamic-batch artifact also gets one batch of two; a dynamic-size one also gets one
    random input at each end of its size range and one at an odd size inside it."""
    inp = meta["input"]
    h, w = inp["size"]
    pre = input_preprocess(inp)
    if data:

        ds = open_dataset(data, "val")
        images, labels = zip(*(ds[i] for i in range(min(n, len(ds)))))
        resized = [pre.resize_image(im) for im in images]
        labels = [pre.resize_labels(lab) for lab in labels]
    else:
        rng = np.random.default_rng(seed)
        resized = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
        labels = None
    xs = [graph_input(inp, r) for r in resized]
    extra = []
    if dynamic_batch(inp) and len(xs) >= 2:
        extra.append(np.concatenate(xs[:2]))
    rng_sizes = size_range(inp)
    if rng_sizes is not None:
        (lo_h, lo_w), (hi_h, hi_w) = rng_sizes
        odd = (min((lo_h + hi_h) // 2 | 1, hi_h), min((lo_w + hi_w) // 2 | 1, hi_w))
        rng = np.random.default_rng(seed + 1)
        extra += [graph_input(inp, rng.integers(0, 256, (*hw, 3), dtype=np.uint8))
                  for hw in dict.fromkeys([(lo_h, lo_w), odd, (hi_h, hi_w)])]
    if labels is not None:
        labels = [*labels, *[None] * len(extra)]
    return xs + extra, labels


def check_parity(directory: Path, meta: dict, n: int, data: str | None,
                 backends: tuple[str, ...], log: Callable[[str], None]) -> list[dict]:
    import torch


    reference = build_reference(meta["model"], meta["input"], meta["output"]["kind"])
    inputs, labels = parity_inputs(meta, n, data)
    with torch.inference_mode():
        # a copy: a fused graph's uint8 input can be a read-only view of an image
        ref = [reference(torch.from_numpy(np.array(x))).numpy() for x in inputs]
    thresholds = meta["parity"]["thresholds"]
    results, problems = [], []
    available = [b for b in backends if is_available(b)]
    if not available:
        raise ParityError(f"no backend to check parity with ({', '.join(backends)} not "
                          "installed); pip install onnxruntime")
    for backend in available:
        model_file = backend_model_file(meta, backend)
        got = run_backend(backend, directory / model_file, inputs, meta["input"]["name"],
                          output=meta["output"])
        r = compare_outputs(backend, ref, got, meta["output"]["kind"], labels,
                            meta["model"]["num_classes"])
        results.append({**r.to_dict(), "file": model_file})
        diff = "n/a" if r.max_abs_diff is None else f"{r.max_abs_diff:.2e}"
        miou = ("" if r.miou_reference is None else
                f", mIoU torch {r.miou_reference:.4f} vs {r.miou_backend:.4f}")
        log(f"parity {backend}: {r.inputs} inputs, max abs diff {diff}, argmax agreement "
            f"{100 * r.argmax_agreement:.3f}%{miou}")
        problems += [f"{backend}: {f}" for f in r.failures(thresholds)]
    if problems:
        raise ParityError("parity check failed: " + "; ".join(problems))
    if meta["output"]["kind"] == "labels_lowres":
        # The shortcut's cost, measured rather than hidden: full-resolution argmax vs the
        # low-resolution argmax that was exported.
        full = build_reference(meta["model"], meta["input"], "labels")
        with torch.inference_mode():
            exact = [full(torch.from_numpy(x)).numpy() for x in inputs]
        cost = compare_outputs("lowres shortcut vs full-resolution argmax", exact, ref, "labels",
                               labels, meta["model"]["num_classes"])
        meta["parity"]["lowres_shortcut"] = cost.to_dict()
        miou = ("" if cost.miou_reference is None else
                f"; mIoU {cost.miou_reference:.4f} (full) vs {cost.miou_backend:.4f} (shortcut)")
        log(f"labels_lowres: agrees with full-resolution argmax on "
            f"{100 * cost.argmax_agreement:.2f}% of pixels{miou}")
    return results


def to_fp16(path: Path, block: tuple[str, ...], log: Callable[[str], None]) -> list[str]:
    """Convert the ONNX at `path` to FP16 weights and math with FP32 inputs and outputs,
    keeping the `block` op types, and the converter's own default list, in FP32; returns the
    op types kept."""
    import onnx


    model, block = to_float16(onnx.load(str(path)), block)
    # The converter appends its input casts after their consumers; parsers that read
    # nodes in order (TensorRT's) need them sorted.
    topological_sort(model.graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    kept = sorted({n.op_type for n in model.graph.node} & set(block))
    log(f"converted to FP16 (FP32 inputs/outputs; present ops kept in FP32: "
        f"{', '.join(kept) or 'none'})")
    return list(block)


def topological_sort(graph) -> None:
    """Reorder `graph.node` in place so every node comes after the producers of its inputs."""
    produced = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in produced for i in n.input)]
        if not ready:
            raise UsageError("graph has a cycle or an input nobody produces: "
                             f"{[n.name for n in pending[:3]]}")
        for n in ready:
            ordered.append(n)
            produced.update(n.output)
        done = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in done]
    del graph.node[:]
    graph.node.extend(ordered)


def export(cfg: ExportConfig, log: Callable[[str], None] = print) -> Path:
    """Export, simplify, check parity and write the artifact directory atomically."""
    import torch

    _check_export_config(cfg)
    h, w = cfg.size
    model, classes, pre, spec = _source_model(cfg)
    model.eval()
    check_size(h, w, classes=model.num_classes, in_itemsize=1 if cfg.fuse_preprocess else 4,
               fix="export at a smaller --size")  # before the first tensor of that size
    model.check_input(torch.zeros(1, model.in_channels, h, w))  # a size it cannot take
    if cfg.dynamic == "size":
        _check_dynamic_size(cfg, model)
    # The network's channel order is the checkpoint's; --color is the order of the frames a
    # fused graph receives (the graph swaps channels when they differ).
    frame_color = cfg.color if cfg.fuse_preprocess else pre.color
    deploy = DeployModel(model, output=cfg.output, fuse_preprocess=cfg.fuse_preprocess,
                         mean=pre.mean, std=pre.std, net_color=pre.color,
                         frame_color=frame_color).eval()
    example, input_meta = _graph_input_meta(cfg, pre, frame_color)
    output_meta = _graph_output_meta(cfg, model.num_classes)
    meta = new_meta(
        model=spec, classes=classes.to_dict(), input=input_meta, output=output_meta,
        precision=cfg.precision,
        parity={"thresholds": THRESHOLDS[cfg.precision], "results": []},
        files={"model.onnx": None},
    )
    with atomic_output_dir(Path(cfg.out), overwrite=cfg.force, flag="--force") as tmp:
        rng = size_range(input_meta)
        where = f"{h}x{w}" if rng is None else \
            f"{h}x{w} (any size from {rng[0][0]}x{rng[0][1]} to {rng[1][0]}x{rng[1][1]})"
        log(f"exporting {spec['name']} ({cfg.output}) at {where}, opset {cfg.opset}")
        info, files = _write_graph(cfg, deploy, example, output_meta["name"], tmp, log)
        meta["files"].update(dict.fromkeys(files))
        meta["export"] = info
        meta["parity"]["results"] = check_parity(tmp, meta, cfg.parity_inputs, cfg.data,
                                                 cfg.parity_backends, log)
        write_meta(tmp, meta)
    log(f"wrote {cfg.out}")
    return Path(cfg.out)


def _check_export_config(cfg: ExportConfig) -> None:
    if cfg.output not in OUTPUT_KINDS:
        raise UsageError(f"unknown output kind {cfg.output!r}; choose one of "
                         f"{', '.join(OUTPUT_KINDS)}")
    if cfg.precision not in ("fp32", "fp16"):
        raise UsageError(f"--precision {cfg.precision}: export writes fp32 or fp16; INT8 is "
                         "`edgeseg quantize` (calibration needed)")
    unknown_formats = set(cfg.formats) - set(FORMATS)
    if unknown_formats:
        raise UsageError(f"unknown format(s) {sorted(unknown_formats)}; choose "
                         f"{', '.join(FORMATS)}")
    if cfg.dynamic not in DYNAMIC_KINDS:
        raise UsageError(f"--dynamic {cfg.dynamic}: choose batch (any batch size) or size "
                         "(any batch, and height and width within --size-range)")
    if cfg.size_range is not None and cfg.dynamic != "size":
        raise UsageError("--size-range needs --dynamic size")


def _check_dynamic_size(cfg: ExportConfig, model) -> None:
    """Refuse a dynamic-size export the model or the range cannot give (before exporting)."""
    import torch

    reason = getattr(model, "static_size_reason", None)
    if reason:
        raise UsageError(f"--dynamic size: {type(model).__name__} {reason}; export it at a "
                         "fixed --size (one artifact per size), or with --dynamic batch")
    if getattr(model, "pad", "pad") == "error":
        raise UsageError(f"--dynamic size: this {type(model).__name__} was built with "
                         "pad='error' and takes only sides that are multiples of "
                         f"{model.size_divisor}, while a dynamic-size graph runs every size in "
                         "its range; build it with pad='pad' (the default)")
    lo, hi = cfg.size_range or default_range(cfg.size)
    check_range(lo, hi, "--size-range")
    if not all(a <= s <= b for a, s, b in zip(lo, cfg.size, hi)):
        raise UsageError(f"--size {cfg.size[0]}x{cfg.size[1]} is the nominal size of a "
                         f"dynamic-size graph and must lie in --size-range "
                         f"{lo[0]}x{lo[1]}:{hi[0]}x{hi[1]}")
    check_size(*hi, classes=model.num_classes, in_itemsize=1 if cfg.fuse_preprocess else 4,
               fix="give a smaller --size-range maximum")
    model.check_input(torch.zeros(1, model.in_channels, *lo))


def _source_model(cfg: ExportConfig) -> tuple[Any, ClassSet, Preprocess, dict]:
    """(the network, its classes, its preprocessing, meta.json's model section): from the
    checkpoint, or the registry's model with seeded random weights."""
    import torch

    if cfg.checkpoint:
        ck = read_checkpoint(cfg.checkpoint)
        if cfg.model and cfg.model != ck["model"]["name"]:
            raise UsageError(f"{cfg.checkpoint} is a {ck['model']['name']} checkpoint, not "
                             f"{cfg.model}; drop --model or pass the matching checkpoint")
        model, classes, pre = model_from_checkpoint(ck, source=cfg.checkpoint)
        spec = {**ck["model"], "source": "checkpoint",
                "checkpoint": str(Path(cfg.checkpoint).resolve()),
                "checkpoint_sha256": sha256(Path(cfg.checkpoint))}
        return model, classes, pre, spec
    if not cfg.model:
        raise UsageError("give --model NAME (random weights) or --checkpoint CKPT")
    torch.manual_seed(cfg.init_seed)
    model = create_model(cfg.model, num_classes=cfg.num_classes, **cfg.model_options)
    classes = CITYSCAPES if cfg.num_classes == 19 else ClassSet(
        "unnamed", tuple(f"class{i}" for i in range(cfg.num_classes)),
        tuple((0, 0, 0) for _ in range(cfg.num_classes)))
    pre = Preprocess(size=tuple(cfg.size))
    spec = {"name": cfg.model, "options": dict(cfg.model_options),
            "num_classes": cfg.num_classes, "source": "registry",
            "init_seed": cfg.init_seed, "checkpoint": None}
    return model, classes, pre, spec


def _graph_input_meta(cfg: ExportConfig, pre: Preprocess, frame_color: str) -> tuple[Any, dict]:
    """(an example input tensor for the exporter, meta.json's input section)."""
    import torch

    h, w = cfg.size
    if cfg.fuse_preprocess:
        example = torch.zeros(1, h, w, 3, dtype=torch.uint8)
        in_shape, in_dtype, layout = [1, h, w, 3], "uint8", "NHWC"
    else:
        example = torch.zeros(1, 3, h, w)
        in_shape, in_dtype, layout = [1, 3, h, w], "float32", "NCHW"
    meta = {"name": "input", "shape": in_shape, "dtype": in_dtype, "layout": layout,
            "size": [h, w], "color": frame_color, "network_color": pre.color,
            "mean": list(pre.mean), "std": list(pre.std),
            "resize": pre.resize, "fused_preprocess": cfg.fuse_preprocess,
            "dynamic": cfg.dynamic}
    if cfg.dynamic == "size":
        lo, hi = cfg.size_range or default_range(cfg.size)
        meta["size_range"] = {"min": list(lo), "max": list(hi)}
    meta["shape"] = graph_dims(meta, layout)
    return example, meta


def _graph_output_meta(cfg: ExportConfig, num_classes: int) -> dict:
    """meta.json's output section."""
    import torch

    h, w = cfg.size
    if cfg.output.startswith("labels"):
        out_shape = [1, h, w]
        out_dtype = "uint8" if label_dtype(num_classes) == torch.uint8 else "int32"
    else:
        out_shape, out_dtype = [1, num_classes, h, w], "float32"
    if cfg.dynamic in ("batch", "size"):
        out_shape[0] = "batch"
    if cfg.dynamic == "size":
        out_shape[-2:] = ["height", "width"]
    out_name = "labels" if cfg.output.startswith("labels") else cfg.output
    return {"name": out_name, "kind": cfg.output, "dtype": out_dtype, "shape": out_shape}


def _export_dims(cfg: ExportConfig) -> tuple[dict, dict] | None:
    """({input axis: (name, min, max)}, {output axis: name}) of a dynamic export, else None."""
    if cfg.dynamic is None:
        return None
    batch = ("batch", 1, 1024)
    if cfg.dynamic == "batch":
        return {0: batch}, {0: "batch"}
    (lo_h, lo_w), (hi_h, hi_w) = cfg.size_range or default_range(cfg.size)
    hw = (1, 2) if cfg.fuse_preprocess else (2, 3)
    out_hw = (1, 2) if cfg.output.startswith("labels") else (2, 3)
    return ({0: batch, hw[0]: ("height", lo_h, hi_h), hw[1]: ("width", lo_w, hi_w)},
            {0: "batch", out_hw[0]: "height", out_hw[1]: "width"})


def _write_graph(cfg: ExportConfig, deploy, example, out_name: str, tmp: Path,
                 log: Callable[[str], None]) -> tuple[dict, list[str]]:
    """Write tmp/model.onnx (simplified, FP16 if asked) and the other formats; returns
    (meta.json's export section, the other formats' files)."""
    import onnx
    import torch

    with torch.inference_mode(False), torch.no_grad():
        exporter = export_onnx(deploy, example, tmp / "model.onnx", opset=cfg.opset,
                               dynamic=_export_dims(cfg), output_name=out_name)
    info = {"exporter": exporter}
    if cfg.simplify:
        info.update(simplify(tmp / "model.onnx", log))
    if cfg.precision == "fp16":
        info["fp16_block"] = to_fp16(tmp / "model.onnx", cfg.fp16_block, log)
    graph = onnx.load(str(tmp / "model.onnx"))
    info["opset"] = graph_opset(graph)  # what the file declares, not what was asked
    info["ops_final"] = dict(op_counts(graph))
    written: list[str] = []
    for fmt in cfg.formats:
        if fmt != "onnx":
            files = write_format(fmt, tmp / "model.onnx", tmp, fp16=cfg.precision == "fp16")
            written += files
            log(f"wrote {FORMATS[fmt].summary}: {'/'.join(files)}")
    return info, written


def compare(artifact: str, *, inputs: int = 3, data: str | None = None,
            backends: tuple[str, ...] = CPU_ENGINES,
            log: Callable[[str], None] = print) -> list[dict]:
    """Re-run the parity check of an existing artifact (raises ParityError below its
    thresholds)."""
    meta = read_meta(artifact)
    if "model.onnx" not in meta["files"]:
        raise ArtifactError(f"{artifact}: no model.onnx to compare")
    return check_parity(Path(artifact), meta, inputs, data, backends, log)


__all__ = ["ExportConfig", "ParityError", "compare", "export"]
