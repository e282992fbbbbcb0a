"""`edgeseg import`: wrap a segmentation ONNX made elsewhere as an edgeseg artifact, so that
quantization, benchmarks and the runtimes work on it like on an exported model."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeseg.backends import is_available
from edgeseg.core.artifact import new_meta, write_meta
from edgeseg.core.capabilities import CPU_ENGINES, ENGINES
from edgeseg.core.compare import ParityError, compare_outputs
from edgeseg.core.errors import UsageError
from edgeseg.core.lint import load_onnx
from edgeseg.core.shapes import check_range, default_range
from edgeseg.data.io import atomic_output_dir
from edgeseg.data.transforms import Preprocess
from edgeseg.export.parity import run_backend

ELEM_TYPES = {1: "float32", 10: "float16", 2: "uint8", 6: "int32", 7: "int64"}
# Two engines running the same graph in f32 must agree (there is no PyTorch reference).
IMPORT_AGREEMENT = {"argmax_agreement": 0.999, "mean_rel_diff": 1e-3}


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value_info.type.tensor_type.shape.dim]


def describe_io(model) -> tuple[dict, dict]:
    """(input, output) descriptions of a one-input, one-output NCHW segmentation graph."""
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UsageError(f"a segmentation graph has one input and one output; this one has "
                         f"{len(inputs)} inputs and {len(graph.output)} outputs")
    inp, out = inputs[0], graph.output[0]
    in_shape, out_shape = _dims(inp), _dims(out)
    in_type = ELEM_TYPES.get(inp.type.tensor_type.elem_type, "unknown")
    out_type = ELEM_TYPES.get(out.type.tensor_type.elem_type, "unknown")
    if len(in_shape) != 4 or in_shape[1] != 3 or in_type not in ("float32", "float16"):
        raise UsageError(f"input {inp.name!r} is {in_type} {in_shape}; edgeseg imports float "
                         "NCHW images with 3 channels (N x 3 x H x W)")
    if len(out_shape) == 4 and out_type in ("float32", "float16"):
        kind = "logits"
    elif len(out_shape) in (3, 4) and out_type in ("uint8", "int32", "int64"):
        kind = "labels"
    else:
        raise UsageError(f"output {out.name!r} is {out_type} {out_shape}; expected N x C x H x W "
                         "float scores or N x H x W integer labels")
    return ({"name": inp.name, "shape": in_shape, "dtype": in_type},
            {"name": out.name, "shape": out_shape, "dtype": out_type, "kind": kind})


def _sizes(inp: dict, size, size_range) -> tuple[tuple[int, int], tuple | None]:
    """(the nominal size, the size range or None) of an imported graph's input: its own
    fixed H/W, or for a dynamic H/W the --size and --size-range given."""
    h, w = inp["shape"][2], inp["shape"][3]
    if isinstance(h, int) and isinstance(w, int):
        if size_range is not None or (size is not None and tuple(size) != (h, w)):
            raise UsageError(f"input {inp['name']!r} is fixed at {h}x{w}; --size and "
                             "--size-range are for a graph with a dynamic height/width")
        return (h, w), None
    if isinstance(h, int) or isinstance(w, int):
        raise UsageError(f"input {inp['name']!r} has shape {inp['shape']}: only one of height "
                         "and width is dynamic; edgeseg takes both fixed or both dynamic")
    if isinstance(inp["shape"][0], int):
        raise UsageError(f"input {inp['name']!r} has a dynamic height/width but a fixed batch "
                         f"{inp['shape']}; re-export it with a dynamic batch too")
    if size is None:
        raise UsageError(f"input {inp['name']!r} has a dynamic height/width {inp['shape']}: "
                         "give --size HxW (the nominal size: calibration and benchmarks use it) "
                         "and --size-range MIN:MAX, or fix them before import (onnxsim "
                         "--overwrite-input-shape)")
    lo, hi = size_range or default_range(tuple(size))
    check_range(lo, hi, "--size-range")
    if not all(a <= v <= b for a, v, b in zip(lo, size, hi)):
        raise UsageError(f"--size {size[0]}x{size[1]} must lie in --size-range "
                         f"{lo[0]}x{lo[1]}:{hi[0]}x{hi[1]}")
    return tuple(size), (tuple(lo), tuple(hi))


def import_onnx(onnx_path: str, out: str, *, classes, mean, std, color: str = "RGB",
                resize: str = "stretch", force: bool = False, parity_inputs: int = 2,
                size: tuple[int, int] | None = None, size_range: tuple | None = None,
                log: Callable[[str], None] = print) -> Path:
    """Validate `onnx_path`, copy it into a new artifact directory with its meta.json, and run
    it in ONNX Runtime and OpenVINO (f32) on random inputs to check that both load it and
    agree (there is no PyTorch model to compare with). A graph with a dynamic height/width
    needs `size` (nominal) and takes `size_range` (default half to twice `size`); both
    engines then also run it at the range's ends."""

    model = load_onnx(onnx_path)
    inp, outp = describe_io(model)
    (h, w), rng_sizes = _sizes(inp, size, size_range)
    c = outp["shape"][1] if outp["kind"] == "logits" else None
    if isinstance(c, int) and c != classes.num_classes:
        raise UsageError(f"the graph outputs {c} classes but the class set '{classes.name}' has "
                         f"{classes.num_classes}; pass the matching --classes")
    pre = Preprocess(size=(h, w), resize=resize, color=color, mean=tuple(mean), std=tuple(std))
    dynamic = "size" if rng_sizes else "batch" if not isinstance(inp["shape"][0], int) else None
    if rng_sizes:  # edgeseg's names for the dynamic dimensions, whatever the graph calls them
        inp = {**inp, "shape": ["batch", 3, "height", "width"]}
        outp = {**outp, "shape": ["batch", *outp["shape"][1:-2], "height", "width"]}
    meta = new_meta(
        model={"name": Path(onnx_path).stem, "options": {}, "num_classes": classes.num_classes,
               "source": "import", "checkpoint": None, "imported_from": str(onnx_path)},
        classes=classes.to_dict(),
        input={**inp, "layout": "NCHW", "size": [h, w], "color": color, "network_color": color,
               "mean": list(pre.mean),
               "std": list(pre.std), "resize": resize, "fused_preprocess": False,
               "dynamic": dynamic,
               **({"size_range": {"min": list(rng_sizes[0]), "max": list(rng_sizes[1])}}
                  if rng_sizes else {})},
        output={**outp},
        precision="fp16" if inp["dtype"] == "float16" else "fp32",
        parity={"thresholds": IMPORT_AGREEMENT, "results": []}, files={"model.onnx": None},
        export={"opset": next((o.version for o in model.opset_import if o.domain in ("",
                                                                                    "ai.onnx")),
                              None), "exporter": "imported"},
    )
    with atomic_output_dir(Path(out), overwrite=force, flag="--force") as tmp:
        shutil.copyfile(onnx_path, tmp / "model.onnx")
        rng = np.random.default_rng(0)
        dtype = np.float16 if inp["dtype"] == "float16" else np.float32
        sizes = [(h, w)] * parity_inputs + list(rng_sizes or ())
        xs = [pre.normalize(rng.integers(0, 256, (*hw, 3), dtype=np.uint8))[None].astype(dtype)
              for hw in sizes]
        outs = {b: run_backend(b, tmp / "model.onnx", xs, inp["name"])
                for b in CPU_ENGINES if is_available(b)}
        if len(outs) == 2:
            ref, other = CPU_ENGINES
            r = compare_outputs(f"{other} vs {ref}", outs[ref], outs[other], outp["kind"])
            meta["parity"]["results"] = [r.to_dict()]
            log(f"imported graph runs in {ENGINES[ref].title} and {ENGINES[other].title}; they "
                "agree on "
                f"{100 * r.argmax_agreement:.3f}% of pixels")
            problems = r.failures(IMPORT_AGREEMENT)
            if problems:
                raise ParityError("ONNX Runtime and OpenVINO disagree on the imported graph: "
                                  + "; ".join(problems))
        else:
            log(f"only {', '.join(outs) or 'no backend'} could run it: no cross-check")
        write_meta(tmp, meta)
    log(f"wrote {out}")
    return Path(out)
