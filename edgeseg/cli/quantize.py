"""`edgeseg calib build` and `edgeseg quantize`: calibration sets and INT8 Q/DQ artifacts."""

from __future__ import annotations

import argparse

from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.cli.common import (
    add_force,
    add_progress,
    add_threads,
    parse_size,
    positive_int,
    status,
)
from edgeseg.core.artifact import read_meta
from edgeseg.core.errors import GoalMissed
from edgeseg.data.calibration import DEFAULT_IMAGES, MIN_IMAGES, build
from edgeseg.quant.config import (
    ACCEPT_DROP,
    DECIDED_MARGIN,
    DEFAULT_EXCLUDE_OPS,
    HOLDOUT,
    METHODS,
    MIN_AGREEMENT,
    MIN_FP32_AGREEMENT,
    MIN_KERNEL_AGREEMENT,
    TARGETS,
    QuantConfig,
)
from edgeseg.quant.int8 import quantize
from edgeseg.quant.nncf_route import quantize_nncf
from edgeseg.quant.qdq import COMPUTE_OPS


def add_parser(sub: argparse._SubParsersAction) -> None:
    _add_calib_parser(sub)
    q = _add_quantize_parser(sub)
    _add_acceptance_args(q)
    _add_quantize_options(q)


def _add_calib_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("calib", help="build calibration sets for INT8")
    csub = c.add_subparsers(dest="calib_command", metavar="ACTION", required=True)
    b = csub.add_parser("build", help="draw, resize and store calibration images",
                        description="Draw N images from a dataset split (stratified so rare "
                        "classes appear) or an image list, resize them by the artifact's policy "
                        "and store them as a reusable, content-hashed set. "
                        f"At least {MIN_IMAGES} images.")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="dataset root (cityscapes, camvid or folder layout)")
    src.add_argument("--list", dest="list_file", metavar="FILE",
                     help="text file with one image path per line (relative to the file)")
    b.add_argument("--split", default="train",
                   help="dataset split to draw from (default train: calibrating on the val "
                   "split would leak into the accuracy you then measure on it)")
    b.add_argument("--num", type=positive_int, default=DEFAULT_IMAGES)
    geo = b.add_mutually_exclusive_group(required=True)
    geo.add_argument("--artifact", help="take the input size and resize policy from it")
    geo.add_argument("--size", type=parse_size, metavar="HxW")
    b.add_argument("--resize", choices=("stretch", "letterbox"), default="stretch",
                   help="with --size: the resize policy (default stretch)")
    b.add_argument("--out", required=True, help="set directory, e.g. calibration/NAME")
    b.add_argument("--seed", type=int, default=0)
    add_force(b, "--out")
    add_progress(b)
    b.set_defaults(func=run_calib_build)


def _add_quantize_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """`edgeseg quantize` with its inputs, target and calibration arguments."""
    q = sub.add_parser("quantize", help="INT8 Q/DQ artifact from an FP32 artifact",
                       description="Calibrate and quantize an FP32 artifact to an INT8 Q/DQ "
                       "ONNX (ONNX Runtime's quantizer, placed by edgeseg's rules) and accept "
                       "it only if it keeps the FP32 artifact's accuracy in the target's own "
                       "engine: the mIoU drop on --val (held-out images), or without labels "
                       "the share of pixels whose class is unchanged on calibration images "
                       "held out of the ranges. A refusal names the figure, the limit and the "
                       "layers to blame, and writes nothing.")
    q.add_argument("artifact", help="FP32 artifact directory (from `edgeseg export`)")
    q.add_argument("--calib", required=True, help="calibration set (`edgeseg calib build`)")
    q.add_argument("--out", required=True, help="INT8 artifact directory to create")
    q.add_argument("--precision", choices=("int8",), default="int8")
    nncf = [t.name for t in TARGETS.values() if "nncf" in t.routes]
    q.add_argument("--route", choices=("qdq", "nncf"), default="qdq",
                   help="qdq: ONNX Runtime's quantizer, a Q/DQ ONNX for every engine (default); "
                   f"nncf: NNCF's INT8 IR (--target {' or '.join(nncf)})")
    q.add_argument("--target", choices=list(TARGETS), default="tensorrt",
                   help="; ".join(f"{t.name}: {t.summary}" for t in TARGETS.values()))
    q.add_argument("--method", choices=METHODS, default="percentile",
                   help="calibration method (default: percentile, the range that holds "
                        "--percentile of the values: min/max ranges spend levels on "
                        "outliers)")
    q.add_argument("--percentile", type=float, default=99.999,
                   help="with --method percentile")
    q.add_argument("--weight-bits", type=int, choices=(7, 8), default=None,
                   help="8: full INT8 weights; 7: the overflow fix for x86 CPUs without VNNI "
                   "(default: 8 for tensorrt, 7 for the CPU targets)")
    q.add_argument("--exclude-node", action="append", default=[], metavar="NAME",
                   help="keep this node in float (repeatable)")
    q.add_argument("--exclude-op", action="append", default=None, metavar="OP",
                   help=f"keep this op type in float (repeatable; default "
                   f"{', '.join(DEFAULT_EXCLUDE_OPS)})")
    q.add_argument("--per-tensor", action="store_true",
                   help="per-tensor weight scales instead of per-channel")
    return q


def _add_acceptance_args(q: argparse.ArgumentParser) -> None:
    """What judges the INT8 graph: labels, the accuracy budget, the label-free check."""
    q.add_argument("--val", default=None, metavar="DATASET",
                   help="score FP32 vs INT8 on this dataset's val split and accept on the "
                   "mIoU drop (with --max-drop: half of it tunes, the other half reports)")
    q.add_argument("--test", default=None, metavar="DATASET",
                   help="with --max-drop: report the drop on this dataset's val split and let "
                   "the whole --val split tune")
    q.add_argument("--val-limit", type=positive_int, default=None,
                   help="score the first N val images only")
    q.add_argument("--max-drop", type=float, default=None, metavar="POINTS",
                   help="accuracy budget: mIoU points the INT8 graph may lose against FP32 "
                   "(keeps the most sensitive layers in float until met; needs --val); a "
                   "missed budget is a refusal")
    q.add_argument("--keep-best", action="store_true",
                   help="with --max-drop: write the best graph found even if the budget is "
                   "missed (meta.json says so; exit code 3)")
    q.add_argument("--accept-drop", type=float, default=ACCEPT_DROP, metavar="POINTS",
                   help=f"with --val and no budget: the largest mIoU drop accepted (default "
                   f"{ACCEPT_DROP})")
    q.add_argument("--min-fp32-agreement", type=float, default=MIN_FP32_AGREEMENT,
                   metavar="SHARE", help="without --val: the share of pixels that must keep "
                   f"their FP32 class (default {MIN_FP32_AGREEMENT}), of those FP32 decides")
    q.add_argument("--decided-margin", type=float, default=DECIDED_MARGIN, metavar="P",
                   help="a pixel counts as decided when FP32's top class leads the runner-up "
                   f"by this much probability (default {DECIDED_MARGIN}; 0: every pixel)")
    q.add_argument("--holdout", type=positive_int, default=HOLDOUT, metavar="N",
                   help="calibration images kept out of the ranges for that check (at most "
                   f"1/8 of the set; default {HOLDOUT})")
    q.add_argument("--sensitivity-images", type=positive_int, default=48)
    q.add_argument("--max-float-layers", type=positive_int, default=12)


def _add_quantize_options(q: argparse.ArgumentParser) -> None:
    """Placement rules, the engine-agreement gate, TensorRT's cache and how it runs."""
    q.add_argument("--no-rules", action="store_true",
                   help="ONNX Runtime's Q/DQ placement as it comes instead of edgeseg's rules "
                   "(for comparison)")
    q.add_argument("--quantize-image-convs", action="store_true",
                   help="quantize the convolutions that read the image too (by default they "
                   "stay float: the image-convs rule)")
    q.add_argument("--no-kernel-check", action="store_true",
                   help="skip running each INT8 layer alone in the target's engine against "
                   "the reference arithmetic (by default a layer the engine miscomputes on "
                   "this CPU stays float: the engine-faults rule)")
    q.add_argument("--require-engine-agreement", action="store_true",
                   help="also refuse when ONNX Runtime and OpenVINO disagree on the INT8 graph "
                   "(measured and warned about in any case)")
    q.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT,
                   help="ONNX Runtime vs OpenVINO agreement, reference arithmetic, below which "
                   "they warn (or refuse)")
    q.add_argument("--min-kernel-agreement", type=float, default=MIN_KERNEL_AGREEMENT,
                   help="the same for their INT8 kernels")
    q.add_argument("--trt-version", default="10.3.0",
                   help="TensorRT version written in calib.cache's header")
    add_threads(q)
    q.add_argument("--no-range-cache", action="store_true",
                   help="calibrate again even when ranges for this model, set and method are "
                   "cached (EDGESEG_CACHE/calibration-ranges)")
    add_force(q, "--out")
    q.add_argument("--list-nodes", action="store_true",
                   help="print the artifact's quantizable layers and exit")
    add_progress(q)
    q.set_defaults(func=run_quantize)


def run_calib_build(args: argparse.Namespace) -> int:

    if args.artifact:
        inp = read_meta(args.artifact, verify=False)["input"]
        size, resize = tuple(inp["size"]), inp["resize"]
    else:
        size, resize = args.size, args.resize
    build(args.out, size=size, resize=resize, data=args.data, list_file=args.list_file,
          split=args.split, num=args.num, seed=args.seed, overwrite=args.force,
          progress=not args.no_progress, log=status)
    return 0


def run_quantize(args: argparse.Namespace) -> int:

    if args.list_nodes:
        return list_nodes(args.artifact)
    cfg = QuantConfig(
        artifact=args.artifact, calib=args.calib, out=args.out, target=args.target,
        method=args.method, percentile=args.percentile,
        exclude_nodes=tuple(args.exclude_node),
        exclude_ops=tuple(DEFAULT_EXCLUDE_OPS if args.exclude_op is None else args.exclude_op),
        per_channel=not args.per_tensor, weight_bits=args.weight_bits, val=args.val,
        val_limit=args.val_limit, test=args.test, keep_best=args.keep_best,
        accept_drop=args.accept_drop, min_fp32_agreement=args.min_fp32_agreement,
        decided_margin=args.decided_margin,
        holdout=args.holdout, rules=not args.no_rules,
        quantize_image_convs=args.quantize_image_convs, kernel_check=not args.no_kernel_check,
        require_engine_agreement=args.require_engine_agreement,
        max_drop=args.max_drop, sensitivity_images=args.sensitivity_images,
        max_float_layers=args.max_float_layers, min_agreement=args.min_agreement,
        min_kernel_agreement=args.min_kernel_agreement,
        trt_version=args.trt_version, threads=args.threads, force=args.force,
        range_cache=None if args.no_range_cache else str(DEFAULT_CACHE / "calibration-ranges"))
    if args.route == "nncf":

        meta = quantize_nncf(cfg, log=status, progress=not args.no_progress)
    else:
        meta = quantize(cfg, log=status, progress=not args.no_progress)
    acc = meta.get("acceptance") or {}
    if acc.get("budget_met") is False:
        status(f"WARNING: the accuracy budget of {acc['limit']} points was missed (drop "
               f"{acc['figure']:.2f} on held-out images); --keep-best wrote the best graph")
        return GoalMissed.exit_code
    return 0


def list_nodes(artifact: str) -> int:
    import onnx


    read_meta(artifact)
    model = onnx.load(f"{artifact}/model.onnx")
    for n in model.graph.node:
        if n.op_type in COMPUTE_OPS:
            print(f"{n.name}\t{n.op_type}")
    return 0
