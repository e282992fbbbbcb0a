"""`edgeseg export` and `edgeseg compare`."""

from __future__ import annotations

import argparse
import json

from edgeseg.backends import require
from edgeseg.bench.accuracy import markdown, report
from edgeseg.cli.common import (
    add_engines,
    add_force,
    add_json,
    parse_size,
    parse_size_range,
    positive_int,
    status,
    write_json,
)
from edgeseg.cli.train import parse_options
from edgeseg.core.capabilities import CPU_ENGINES, FORMATS
from edgeseg.core.errors import InputError, UsageError
from edgeseg.core.lint import TARGETS, lint, load_onnx, summarize
from edgeseg.data.classes import CAMVID, CITYSCAPES, SYNTHETIC, ClassSet
from edgeseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from edgeseg.export.exporter import FP16_BLOCK, ExportConfig, compare, export
from edgeseg.export.importer import import_onnx
from edgeseg.models.deploy import OUTPUT_KINDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_export_parser(sub)
    add_compare_parser(sub)
    add_lint_parser(sub)
    add_import_parser(sub)


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to an artifact directory (ONNX)",
                       description="Deploy graph (one input, one output, BatchNorm folded) to "
                       "a single-file ONNX, simplified, checked against PyTorch in ONNX Runtime "
                       "and OpenVINO; written as an artifact directory with meta.json only if "
                       "parity holds.")
    p.add_argument("--recipe", default=None, metavar="FILE",
                   help="a TOML recipe (export/*.toml); flags given here override it")
    p.add_argument("--model", default=None, help="registered model (random weights unless "
                   "--checkpoint)")
    p.add_argument("--checkpoint", default=None, help="a checkpoint from `edgeseg train`")
    p.add_argument("--opt", action="append", default=None, metavar="KEY=VALUE",
                   help="model option for a registry model (e.g. --opt backbone=resnet50)")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="classes of a randomly initialised model (default 19)")
    p.add_argument("--size", type=parse_size, default=None, metavar="HxW",
                   help="input size (default 512x1024)")
    p.add_argument("--out", required=True, help="artifact directory to create")
    p.add_argument("--output", choices=OUTPUT_KINDS, default=None,
                   help="what the graph returns (default logits; labels: argmax in the graph)")
    p.add_argument("--fuse-preprocess", action="store_true", default=None,
                   help="graph input is uint8 NHWC frames, normalised inside")
    p.add_argument("--color", choices=("RGB", "BGR"), default=None,
                   help="channel order of the frames a fused graph receives (default RGB)")
    p.add_argument("--precision", choices=("fp32", "fp16"), default=None,
                   help="fp32 (default) or fp16: FP16 weights and math, FP32 inputs and outputs")
    p.add_argument("--fp16-block", nargs="*", default=list(FP16_BLOCK), metavar="OP",
                   help="op types kept in FP32 in an fp16 export (default "
                   f"{' '.join(FP16_BLOCK)})")
    p.add_argument("--format", nargs="+", default=None, choices=list(FORMATS),
                   help="formats to write: " + "; ".join(f"{f.name}: {f.summary}"
                                                          for f in FORMATS.values()))
    p.add_argument("--opset", type=int, default=None, help="default 17")
    p.add_argument("--dynamic", choices=("batch", "size"), default=None,
                   help="batch: any batch size; size: any batch, and any height and width "
                   "within --size-range (an image then runs at its own size when it fits)")
    p.add_argument("--size-range", type=parse_size_range, default=None, metavar="MIN:MAX",
                   help="with --dynamic size: the sizes the graph takes, e.g. "
                   "512x1024:1024x2048 (default: half to twice --size, which is the "
                   "nominal size for calibration, benchmarks and TensorRT's opt shape)")
    p.add_argument("--no-simplify", action="store_true")
    p.add_argument("--parity-inputs", type=positive_int, default=3)
    p.add_argument("--data", default=None, help="dataset for the parity check (val images)")
    add_force(p, "--out")
    p.set_defaults(func=run_export)


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="check an artifact against PyTorch, or score "
                       "artifacts side by side (--val)",
                       description="One artifact: run its ONNX in ONNX Runtime and OpenVINO "
                       "(f32) against the PyTorch model it came from; exit 1 below the "
                       "thresholds recorded in meta.json. With --val DATASET: score every "
                       "artifact given (FP32, FP16, INT8) in every engine that runs it here on "
                       "the val split, side by side against the FP32 one (mIoU, per-class IoU, "
                       "argmax agreement, the classes that lost most).")
    c.add_argument("artifact", nargs="+")
    c.add_argument("--val", default=None, metavar="DATASET",
                   help="accuracy report on this dataset's val split")
    c.add_argument("--val-limit", type=positive_int, default=None)
    c.add_argument("--md", dest="md_out", default=None, metavar="OUT",
                   help="with --val: also write the report as a Markdown table")
    c.add_argument("--inputs", type=positive_int, default=3)
    c.add_argument("--data", default=None)
    add_engines(c, list(CPU_ENGINES),
                "engines to check, each an error when it is not installed (TensorRT runs "
                "the artifact's engine for this GPU, from `edgeseg build`)")
    add_json(c, "the results")
    c.set_defaults(func=run_compare)


def run_export(args: argparse.Namespace) -> int:

    apply_recipe(args, args.recipe)
    export(ExportConfig(
        out=args.out, model=args.model, checkpoint=args.checkpoint, size=args.size,
        output=args.output, fuse_preprocess=args.fuse_preprocess, color=args.color,
        opset=args.opset, dynamic=args.dynamic, size_range=args.size_range,
        simplify=not args.no_simplify,
        precision=args.precision, fp16_block=tuple(args.fp16_block),
        formats=tuple(dict.fromkeys(["onnx", *args.format])),
        num_classes=args.num_classes, model_options=parse_options(args.opt),
        parity_inputs=args.parity_inputs, data=args.data, force=args.force), log=status)
    return 0


RECIPE_KEYS = {"model": "model", "size": "size", "precision": "precision", "output": "output",
               "formats": "format", "opset": "opset", "fuse_preprocess": "fuse_preprocess",
               "color": "color", "dynamic": "dynamic", "size_range": "size_range",
               "options": "opt",
               "num_classes": "num_classes"}
# What an option is when neither the command line nor a recipe sets it.
EXPORT_DEFAULTS = {"size": (512, 1024), "precision": "fp32", "output": "logits",
                   "format": ["onnx"], "opset": 17, "fuse_preprocess": False, "color": "RGB",
                   "opt": [], "num_classes": 19}


def apply_recipe(args: argparse.Namespace, path: str | None) -> None:
    """Fill `args`: the command line first, then the TOML recipe, then the defaults."""
    recipe = {}
    if path:
        import tomllib

        try:
            with open(path, "rb") as f:
                recipe = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InputError(f"recipe {path}: {e}") from None
        unknown = sorted(set(recipe) - set(RECIPE_KEYS))
        if unknown:
            raise UsageError(f"recipe {path}: unknown keys {unknown}; known: "
                             f"{sorted(RECIPE_KEYS)}")
    for key, value in recipe.items():
        dest = RECIPE_KEYS[key]
        if getattr(args, dest) is not None:
            continue  # given on the command line
        if key == "size":
            value = parse_size(value)
        elif key == "size_range":
            value = parse_size_range(value)
        elif key == "options":
            value = [f"{k}={json.dumps(v)}" for k, v in value.items()]
        setattr(args, dest, value)
    for dest, value in EXPORT_DEFAULTS.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)


def run_compare(args: argparse.Namespace) -> int:

    if args.val:
        return run_accuracy_report(args)
    if len(args.artifact) > 1:
        raise UsageError("several artifacts are compared on a validation set: add --val DATASET")
    for name in args.backends:
        require(name)  # asked for by name: missing is an error, not a skip
    results = compare(args.artifact[0], inputs=args.inputs, data=args.data,
                      backends=tuple(args.backends), log=status)
    if args.json:
        write_json(args.json, results)
    status("parity: PASS")
    return 0


def run_accuracy_report(args: argparse.Namespace) -> int:
    from pathlib import Path


    rep = report(args.artifact, args.val, limit=args.val_limit, log=status)
    md = markdown(rep)
    if args.json == "-":
        write_json("-", rep)
    else:
        print(md, end="")
        if args.json:
            write_json(args.json, rep)
    if args.md_out:
        Path(args.md_out).write_text(md)
    return 0


def add_lint_parser(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("lint", help="check an ONNX/artifact against an engine's op support",
                       description="Static deployment-readiness check: operators, attributes, "
                       "types, pooling indices, Resize modes, Q/DQ zero points. Exit 1 when "
                       "there are errors.")
    p.add_argument("model", help="artifact directory or .onnx file")
    p.add_argument("--target", choices=TARGETS, default="tensorrt-10")
    add_json(p, "the findings")
    p.set_defaults(func=run_lint)


def run_lint(args: argparse.Namespace) -> int:

    model = load_onnx(args.model)
    findings = lint(model, args.target)
    counts = summarize(findings)
    if args.json:
        write_json(args.json, {"target": args.target, "counts": counts,
                               "findings": [f.to_dict() for f in findings]})
    if args.json != "-":
        for f in findings:
            print(f)
        print(f"{args.target}: {counts['error']} errors, {counts['warning']} warnings, "
              f"{counts['info']} notes")
    return 1 if counts["error"] else 0


def resolve_classes(spec: str):
    """A built-in class set name, a classes.json/.toml file, or a count N."""
    from pathlib import Path


    builtin = {c.name: c for c in (CITYSCAPES, CAMVID, SYNTHETIC)}
    if spec in builtin:
        return builtin[spec]
    if spec.isdigit():
        n = int(spec)
        return ClassSet("unnamed", tuple(f"class{i}" for i in range(n)), ((0, 0, 0),) * n)
    if Path(spec).is_file():
        return ClassSet.load(spec)
    raise UsageError(f"--classes {spec!r}: give {', '.join(builtin)}, a classes.json/.toml "
                     "file, or a number of classes")


def add_import_parser(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("import", help="wrap your own segmentation ONNX as an artifact",
                       description="Check a one-input, one-output NCHW segmentation ONNX, run "
                       "it in ONNX Runtime and OpenVINO, and write an artifact directory so "
                       "every later stage can use it.")
    p.add_argument("onnx")
    p.add_argument("--out", required=True)
    p.add_argument("--classes", required=True,
                   help="cityscapes | camvid | synthetic | classes.json/.toml | N")
    p.add_argument("--mean", type=float, nargs=3, default=list(IMAGENET_MEAN),
                   metavar=("R", "G", "B"), help="0..255 units, RGB order")
    p.add_argument("--std", type=float, nargs=3, default=list(IMAGENET_STD),
                   metavar=("R", "G", "B"))
    p.add_argument("--color", choices=("RGB", "BGR"), default="RGB")
    p.add_argument("--resize", choices=("stretch", "letterbox"), default="stretch")
    p.add_argument("--size", type=parse_size, default=None, metavar="HxW",
                   help="a graph with a dynamic height/width: its nominal size (calibration, "
                   "benchmarks and TensorRT's opt shape use it)")
    p.add_argument("--size-range", type=parse_size_range, default=None, metavar="MIN:MAX",
                   help="a graph with a dynamic height/width: the sizes it is checked at and "
                   "will be run at (default half to twice --size)")
    add_force(p, "--out")
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:

    import_onnx(args.onnx, args.out, classes=resolve_classes(args.classes), mean=args.mean,
                std=args.std, color=args.color, resize=args.resize, force=args.force,
                size=args.size, size_range=args.size_range, log=status)
    return 0
