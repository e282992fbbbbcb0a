"""`edgeseg build`: an artifact's ONNX to a TensorRT engine inside the artifact, or the
equivalent trtexec command line."""

from __future__ import annotations

import argparse
import shlex

from edgeseg.backends.tensorrt import installed_version
from edgeseg.backends.tensorrt.builder import build, preflight
from edgeseg.backends.tensorrt.plan import BuildConfig, engine_tag, plan_build, trtexec_command
from edgeseg.cli.common import add_device, add_force, engine_name, status
from edgeseg.core.devices import parse_device
from edgeseg.core.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build", help="build a TensorRT engine into an artifact (or print the trtexec command)",
        description="Strongly typed TensorRT engine from the artifact's FP16/FP32/INT8 Q/DQ "
        "ONNX (the only route on TensorRT 11, the recommended one on 10.x), or on 10.x the "
        "weakly typed route (--fp16/--int8 with calib.cache or --calib). Written as "
        "model.<gpu>-sm<cc>-trt<version>.engine (raw plan bytes, what trtexec loads) and "
        "recorded in meta.json with the TensorRT version, GPU, compute capability and flags. "
        "The artifact and the TensorRT lint are checked before any GPU work.")
    p.add_argument("artifact")
    p.add_argument("--backend", default="tensorrt", type=engine_name,
                   help="the engine to build for (tensorrt, the only one that builds)")
    add_device(p, "gpu:0")
    p.add_argument("--workspace", type=int, default=None, metavar="MiB",
                   help="builder workspace limit (default: TensorRT's, the GPU's memory)")
    p.add_argument("--opt-level", type=int, default=None, metavar="N",
                   help="builder optimisation level 0..5 (TensorRT's default 3)")
    p.add_argument("--timing-cache", default=None, metavar="FILE",
                   help="persistent timing cache: read when it exists, written after the build")
    p.add_argument("--dla-core", type=int, default=None, metavar="N",
                   help="build for DLA core N (Jetson Xavier/Orin); FP16 or INT8 only")
    p.add_argument("--gpu-fallback", action="store_true",
                   help="with --dla-core: layers DLA cannot run go to the GPU")
    p.add_argument("--shapes", default=None, metavar="MIN/OPT/MAX",
                   help="optimisation profile of a dynamic-batch artifact: batch sizes (1/4/8) "
                   "or full shapes (1x3x512x1024/...); default 1/1/8. A dynamic-size "
                   "artifact: full shapes within its size range, or batch sizes at its "
                   "min / nominal / max size")
    p.add_argument("--version-compatible", action="store_true",
                   help="an engine later TensorRT versions of the same major can load")
    p.add_argument("--hardware-compat", choices=["ampere+", "same-cc"], default=None,
                   help="ampere+: one engine for every GPU of compute capability 8.0 or newer; "
                   "same-cc: for every GPU of this compute capability (TensorRT 10.9+); "
                   "not on Jetson")
    p.add_argument("--fp16", action="store_true", help="TensorRT 10.x weakly typed route: let "
                   "TensorRT pick FP16 kernels for an FP32 artifact")
    p.add_argument("--int8", action="store_true", help="TensorRT 10.x weakly typed route: "
                   "implicit INT8 from the artifact's calib.cache, or from --calib")
    p.add_argument("--calib", default=None, metavar="SET",
                   help="with --int8: a calibration set (`edgeseg calib`) for the calibrator")
    p.add_argument("--print-trtexec", action="store_true",
                   help="print the equivalent trtexec command (works without TensorRT) and exit")
    p.add_argument("--trt-version", default=None, metavar="X.Y.Z",
                   help="with --print-trtexec: the TensorRT on the target (default: the "
                   "installed one, else 10.3.0, JetPack 6's)")
    add_force(p, "the engine for this GPU")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):

    if args.backend != "tensorrt":
        raise UsageError(f"--backend {args.backend}: only tensorrt builds engines; "
                         f"{args.backend} runs the artifact's ONNX or IR as it is")
    device = parse_device(args.device)
    if device.kind != "gpu":
        raise UsageError(f"--device {device}: TensorRT builds on an NVIDIA GPU; write gpu:N")
    return BuildConfig(artifact=args.artifact, device=device.index or 0,
                       workspace_mib=args.workspace, opt_level=args.opt_level,
                       timing_cache=args.timing_cache, dla_core=args.dla_core,
                       gpu_fallback=args.gpu_fallback, shapes=args.shapes,
                       version_compatible=args.version_compatible,
                       hardware_compat=args.hardware_compat, fp16=args.fp16, int8=args.int8,
                       calib=args.calib, force=args.force)


def print_trtexec(args: argparse.Namespace, cfg) -> int:

    version = args.trt_version
    if version is None:
        version = installed_version()
        if version is None:
            version = "10.3.0"
            status("TensorRT is not installed here: the command is for TensorRT 10.3.0 "
                   "(JetPack 6); --trt-version X.Y.Z for another")
    meta, warnings = preflight(cfg, version)
    for w in warnings:
        status(f"lint: {w}")
    plan = plan_build(meta, cfg, version)
    for note in plan.notes:
        status(note)
    tag = engine_tag("GPU", "XY", version, cfg)  # edgeseg names it by the GPU when it builds
    cmd = trtexec_command(meta, plan, cfg, f"model.{tag}.engine")
    status(f"run in {cfg.artifact} on the target device:")
    print(shlex.join(cmd))
    return 0


def run(args: argparse.Namespace) -> int:

    cfg = config_from_args(args)
    if args.print_trtexec:
        return print_trtexec(args, cfg)
    record = build(cfg, log=status)
    layers = record.get("layers")
    if layers:
        for where, counts in layers.items():
            total = sum(counts.values())
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            status(f"{where}: {total} layers ({detail})" if total else f"{where}: none")
    return 0
