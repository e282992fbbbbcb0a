"""What a TensorRT build will do, decided without TensorRT: the route (strongly or weakly
typed), builder flags, optimisation profile, the engine's file tag, the equivalent trtexec
command line, the build record in meta.json, and the checks that refuse an engine built for
another TensorRT version or GPU. Everything here is plain data, so it is tested on machines
without TensorRT or a GPU; builder.py and runner.py turn it into TensorRT calls.

Targets TensorRT 10.x (desktop, JetPack 6) and 11.x. TensorRT 11 builds strongly typed
networks only (the precision lives in the ONNX: FP16 weights, INT8 as Q/DQ); the weakly typed
route (FP16/INT8 builder flags, the implicit INT8 calibrator or a calib.cache) exists on
10.x only, where NVIDIA deprecated it in 10.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from edgeseg.backends.tensorrt.profile import (  # noqa: F401 (parse_shapes re-exported)
    DEFAULT_MAX_BATCH,
    PlanError,
    parse_shapes,
)
from edgeseg.backends.tensorrt.profile import profile as input_profile
from edgeseg.core.capabilities import TARGETS
from edgeseg.core.errors import Mismatch, UsageError

MIN_MAJOR = 10  # the tensor API (set_tensor_address, execute_async_v3) and strong typing
LAST_WEAK_MAJOR = 10  # TensorRT 11 removed the FP16/INT8 builder flags and calibrators
# --hardware-compat value -> (TensorRT enum member, trtexec value, first TensorRT version)
HARDWARE_COMPAT = {"ampere+": ("AMPERE_PLUS", "ampere+", (8, 6, 0)),
                   "same-cc": ("SAME_COMPUTE_CAPABILITY", "sameComputeCapability", (10, 9, 0))}
PLAN_TAG = 0x74727466  # first uint32 of a serialized plan ("ftrt" on disk)




class EngineMismatch(Mismatch):
    """An engine that was built for another TensorRT version or GPU than this machine's."""


@dataclass(frozen=True)
class BuildConfig:
    artifact: str
    device: int = 0
    workspace_mib: int | None = None
    opt_level: int | None = None  # builder optimisation level 0..5 (TensorRT default 3)
    timing_cache: str | None = None
    dla_core: int | None = None
    gpu_fallback: bool = False
    shapes: str | None = None  # "MIN/OPT/MAX" batch sizes, or full NxCxHxW shapes (H/W too
    # for a dynamic-size artifact, within its size range)
    version_compatible: bool = False
    hardware_compat: str | None = None  # "ampere+"
    route: str = "auto"  # auto | strong | weak
    fp16: bool = False  # weak route: let TensorRT pick FP16 kernels
    int8: bool = False  # weak route: implicit INT8 from calib.cache or a calibration set
    calib: str | None = None  # weak route: a calibration set directory (edgeseg calib)
    force: bool = False


@dataclass(frozen=True)
class Plan:
    route: str  # strong | weak
    flags: tuple[str, ...]  # BuilderFlag names
    profile: dict | None  # {input name: [min, opt, max] shapes} for dynamic inputs
    input_name: str
    workspace_bytes: int | None
    opt_level: int | None
    dla_core: int | None
    hardware_compat: str | None
    calibration: str | None  # None | "cache" | "calibrator"
    trt_major: int = MIN_MAJOR
    notes: tuple[str, ...] = field(default=())
    onnx_file: str = "model.onnx"  # the graph the build parses (source_onnx)


# What `edgeseg quantize --target tensorrt` ships for TensorRT's implicit INT8 (10.x): the FP32
# graph and the calibration cache that applies to it.
IMPLICIT_INT8_FILES = ("model.fp32.onnx", "calib.cache")


def source_onnx(meta: dict, cfg: BuildConfig) -> str:
    """The ONNX a build parses: model.onnx, or, for --int8 on an INT8 artifact that ships
    them, the FP32 graph its calib.cache applies to (the implicit INT8 route of 10.x)."""
    if cfg.int8 and meta["precision"] == "int8" and \
            set(IMPLICIT_INT8_FILES) <= set(meta["files"]):
        return "model.fp32.onnx"
    return "model.onnx"


def parse_version(text: str) -> tuple[int, int, int]:
    nums = [int(n) for n in re.findall(r"\d+", str(text))[:3]]
    if not nums:
        raise UsageError(f"not a TensorRT version: {text!r}")
    return tuple((nums + [0, 0])[:3])  # type: ignore[return-value]


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return re.sub(r"^nvidia-", "", s) or "gpu"


def engine_tag(gpu_name: str, compute_capability: str, trt_version: str, cfg: BuildConfig) -> str:
    """The <tag> of model.<tag>.engine: the GPU (or the hardware-compatibility class), its
    compute capability, DLA core, and the TensorRT version."""
    who = "ampere-plus" if cfg.hardware_compat == "ampere+" else \
        f"{_slug(gpu_name)}-sm{compute_capability.replace('.', '')}"
    parts = [who]
    if cfg.dla_core is not None:
        parts.append(f"dla{cfg.dla_core}")
    parts.append(f"trt{'.'.join(map(str, parse_version(trt_version)))}")
    if cfg.version_compatible:
        parts.append("vc")
    return "-".join(parts)


def plan_build(meta: dict, cfg: BuildConfig, trt_version: str) -> Plan:
    """Decide the build from the artifact and the options, for this TensorRT version."""
    major = parse_version(trt_version)[0]
    if major < MIN_MAJOR:
        raise PlanError(f"TensorRT {trt_version} is older than {MIN_MAJOR}.0, which edgeseg "
                        "needs (tensor API, strongly typed networks); on Jetson that is "
                        "JetPack 6.1 or newer (TensorRT 10.3)")
    onnx_file = source_onnx(meta, cfg)
    implicit = onnx_file != "model.onnx"
    precision = "fp32" if implicit else meta["precision"]
    calib = meta.get("calibration") or {}
    route = _route(cfg, major, trt_version)
    notes = _check_int8_graph(precision, calib, route)
    if implicit:
        float_layers = len(calib.get("float_layers") or [])
        notes.append("implicit INT8 from calib.cache on model.fp32.onnx, the FP32 graph this "
                     "artifact ships: TensorRT picks each layer's precision itself, so the "
                     f"Q/DQ graph's float layers ({float_layers}) and its accuracy check do "
                     "not carry over; the strongly typed build of model.onnx keeps both")
    if (cfg.fp16 or cfg.int8) and route == "strong":
        raise PlanError("--fp16/--int8 are the weakly typed route; a strongly typed build "
                        "takes its precision from the graph")
    flags: list[str] = []
    calibration = None
    if route == "weak":
        flags, calibration = _weak_flags(precision, meta, cfg)
        notes.append(f"weakly typed build (deprecated since TensorRT 10.1): flags "
                     f"{', '.join(flags) or 'none'}")
    flags += _placement_flags(precision, cfg)
    notes += _check_hardware_compat(cfg, trt_version)
    if cfg.opt_level is not None and not 0 <= cfg.opt_level <= 5:
        raise PlanError(f"--opt-level must be 0..5, got {cfg.opt_level}")
    if cfg.workspace_mib is not None and cfg.workspace_mib < 1:
        raise PlanError(f"--workspace must be at least 1 MiB, got {cfg.workspace_mib}")
    profile, profile_notes = _profile(meta["input"], cfg)
    notes += profile_notes
    return Plan(route=route, flags=tuple(flags), profile=profile,
                input_name=meta["input"]["name"],
                workspace_bytes=None if cfg.workspace_mib is None else cfg.workspace_mib << 20,
                opt_level=cfg.opt_level, dla_core=cfg.dla_core,
                hardware_compat=cfg.hardware_compat, calibration=calibration,
                trt_major=major, notes=tuple(notes), onnx_file=onnx_file)


def _route(cfg: BuildConfig, major: int, trt_version: str) -> str:
    """strong or weak: as asked, or (auto) weak only for --fp16/--int8."""
    route = cfg.route
    if route not in ("auto", "strong", "weak"):
        raise PlanError(f"route must be auto, strong or weak, got {route!r}")
    if route == "auto":
        route = "weak" if (cfg.fp16 or cfg.int8) else "strong"
    if route == "weak" and major > LAST_WEAK_MAJOR:
        raise PlanError(f"TensorRT {trt_version} builds strongly typed networks only (no "
                        "--fp16/--int8 builder flags, no implicit INT8 calibration); put the "
                        "precision in the graph: `edgeseg export --precision fp16` or "
                        "`edgeseg quantize --target tensorrt`")
    return route


def _check_int8_graph(precision: str, calib: dict, route: str) -> list[str]:
    """Refuse an INT8 artifact TensorRT cannot build on `route`; returns the notes."""
    notes = []
    if precision == "int8":
        target = TARGETS.get(calib.get("target"))
        if not (target and target.symmetric):
            raise PlanError(f"this INT8 artifact was quantized for {calib.get('target')!r} "
                            "(asymmetric activations); TensorRT needs symmetric Q/DQ: "
                            "`edgeseg quantize --target tensorrt`")
        if calib.get("target") != "tensorrt":
            notes.append(f"INT8 graph quantized for {calib.get('target')} (symmetric, so "
                         "TensorRT builds it; --target tensorrt is calibrated for it)")
        if route == "weak":
            raise PlanError("a Q/DQ graph is built strongly typed (explicit quantization); "
                            "implicit INT8 flags apply to an FP32 artifact")
    return notes


def _weak_flags(precision: str, meta: dict, cfg: BuildConfig) -> tuple[list[str], str | None]:
    """The weakly typed route's (precision flags, calibration: None, cache or calibrator)."""
    if precision != "fp32":
        raise PlanError(f"the weakly typed route starts from an FP32 artifact, this one is "
                        f"{precision}")
    flags: list[str] = []
    calibration = None
    if cfg.fp16:
        flags.append("FP16")
    if cfg.int8:
        flags.append("INT8")
        if cfg.calib:
            calibration = "calibrator"
        elif "calib.cache" in meta["files"]:
            calibration = "cache"
        else:
            raise PlanError("--int8 on the weakly typed route needs calibration: the "
                            "artifact has no calib.cache (`edgeseg quantize --target "
                            "tensorrt` writes one) and no --calib SET was given")
    return flags, calibration


def _placement_flags(precision: str, cfg: BuildConfig) -> list[str]:
    """The DLA and version-compatibility flags."""
    flags = []
    if cfg.dla_core is not None:
        if cfg.dla_core < 0:
            raise PlanError(f"--dla-core must be 0 or more, got {cfg.dla_core}")
        if precision == "fp32" and not (cfg.fp16 or cfg.int8):
            raise PlanError("DLA runs FP16 or INT8 only: build an FP16/INT8 artifact, or add "
                            "--fp16 on TensorRT 10.x")
        if cfg.gpu_fallback:
            flags.append("GPU_FALLBACK")
    elif cfg.gpu_fallback:
        raise PlanError("--gpu-fallback applies with --dla-core N")
    if cfg.version_compatible:
        flags.append("VERSION_COMPATIBLE")
    return flags


def _check_hardware_compat(cfg: BuildConfig, trt_version: str) -> list[str]:
    """Refuse a --hardware-compat this TensorRT lacks; returns the notes."""
    if cfg.hardware_compat is None:
        return []
    if cfg.hardware_compat not in HARDWARE_COMPAT:
        raise PlanError(f"--hardware-compat {cfg.hardware_compat!r}: one of "
                        f"{', '.join(HARDWARE_COMPAT)}")
    since = HARDWARE_COMPAT[cfg.hardware_compat][2]
    if parse_version(trt_version) < since:
        raise PlanError(f"--hardware-compat {cfg.hardware_compat} needs TensorRT "
                        f"{'.'.join(map(str, since))} or newer, this is {trt_version}")
    return ["hardware-compatible engines are not supported on Jetson (JetPack)"]


def _profile(inp: dict, cfg: BuildConfig) -> tuple[dict | None, list[str]]:
    """(the optimisation profile for a dynamic input, or None; the notes): profile.py."""
    return input_profile(inp, cfg.shapes)


def trtexec_command(meta: dict, plan: Plan, cfg: BuildConfig, engine_file: str) -> list[str]:
    """The trtexec command line that builds the same engine (run in the artifact directory)."""
    cmd = ["trtexec", f"--onnx={plan.onnx_file}", f"--saveEngine={engine_file}"]
    # TensorRT 11 types every network strongly; its trtexec no longer needs the flag.
    cmd.append("--stronglyTyped" if plan.route == "strong" and plan.trt_major < 11 else "")
    cmd += [f"--{f.lower()}" for f in plan.flags if f in ("FP16", "INT8")]
    if plan.calibration == "cache":
        cmd.append("--calib=calib.cache")
    if plan.workspace_bytes is not None:
        cmd.append(f"--memPoolSize=workspace:{plan.workspace_bytes >> 20}M")
    if plan.opt_level is not None:
        cmd.append(f"--builderOptimizationLevel={plan.opt_level}")
    if cfg.timing_cache:
        cmd.append(f"--timingCacheFile={cfg.timing_cache}")
    if plan.dla_core is not None:
        cmd.append(f"--useDLACore={plan.dla_core}")
        if "GPU_FALLBACK" in plan.flags:
            cmd.append("--allowGPUFallback")
    if plan.profile:
        for key, shape in zip(("min", "opt", "max"), zip(*plan.profile.values())):
            spec = ",".join(f"{n}:{'x'.join(map(str, s))}" for n, s in zip(plan.profile, shape))
            cmd.append(f"--{key}Shapes={spec}")
    if cfg.version_compatible:
        cmd.append("--versionCompatible")
    if plan.hardware_compat:
        cmd.append(f"--hardwareCompatibilityLevel={HARDWARE_COMPAT[plan.hardware_compat][1]}")
    if cfg.device:
        cmd.append(f"--device={cfg.device}")
    cmd.append("--skipInference")
    return [c for c in cmd if c]


def build_record(*, engine_file: str, trt_version: str, gpu_name: str, compute_capability: str,
                 plan: Plan, cfg: BuildConfig, onnx_sha256: str, seconds: float,
                 layers: dict | None = None) -> dict:
    """The meta.json `builds` entry of an engine."""
    return {"backend": "tensorrt", "file": engine_file, "tensorrt": trt_version,
            "device": gpu_name, "compute_capability": compute_capability,
            "route": plan.route, "flags": list(plan.flags), "profile": plan.profile,
            "workspace_mib": cfg.workspace_mib, "opt_level": plan.opt_level,
            "dla_core": plan.dla_core, "version_compatible": cfg.version_compatible,
            "hardware_compat": plan.hardware_compat, "calibration": plan.calibration,
            "onnx_sha256": onnx_sha256, "build_seconds": round(seconds, 1),
            "layers": layers}


def check_build(record: dict, trt_version: str, compute_capability: str) -> None:
    """Refuse (EngineMismatch, before any deserialisation) an engine this machine cannot run:
    another TensorRT version (unless version-compatible and older within the major), another
    GPU architecture (unless hardware-compatible and Ampere or newer)."""
    built = parse_version(record["tensorrt"])
    here = parse_version(trt_version)
    rebuild = ("rebuild it here: edgeseg build ARTIFACT --backend tensorrt (or add "
               "--version-compatible / --hardware-compat ampere+ when building)")
    if built != here:
        ok = record.get("version_compatible") and built[0] == here[0] and built <= here
        if not ok:
            raise EngineMismatch(f"{record['file']} was built with TensorRT {record['tensorrt']}"
                                 f", this machine has {trt_version}; engines only load in the "
                                 f"TensorRT version that built them: {rebuild}")
    cc_built, cc_here = str(record["compute_capability"]), compute_capability
    if cc_built != cc_here:
        major_here = parse_version(cc_here)[0]
        if not (record.get("hardware_compat") == "ampere+" and major_here >= 8):
            raise EngineMismatch(f"{record['file']} was built for {record['device']} (compute "
                                 f"capability {cc_built}), this GPU is compute capability "
                                 f"{cc_here}: {rebuild}")


def select_build(meta: dict, trt_version: str, compute_capability: str) -> dict:
    """The artifact's engine build that runs here, or EngineMismatch naming why none does."""
    builds = [b for b in meta.get("builds", []) if b.get("backend") == "tensorrt"]
    if not builds:
        raise EngineMismatch("the artifact has no TensorRT engine: build one on the target "
                             "with `edgeseg build ARTIFACT --backend tensorrt`")
    reasons = []
    for b in builds:
        try:
            check_build(b, trt_version, compute_capability)
            return b
        except EngineMismatch as e:
            reasons.append(str(e))
    raise EngineMismatch("no TensorRT engine of this artifact runs here: " + "; ".join(reasons))


def plan_version(header: bytes) -> tuple[int, int, int, int] | None:
    """The TensorRT version (major, minor, patch, build) that serialized a plan, from its first
    28 bytes (the layout trtexec --getPlanVersionOnly reads; plans from TensorRT 8.6 on), or
    None when the bytes do not start like a plan."""
    import struct

    if len(header) < 28 or struct.unpack_from("<I", header, 0)[0] != PLAN_TAG:
        return None
    return tuple(header[24:28])  # type: ignore[return-value]


def check_plan_header(header: bytes, trt_version: str, name: str,
                      version_compatible: bool = False) -> None:
    """Refuse a truncated plan, or one from another TensorRT version, before deserialising."""
    if len(header) < 28:
        raise EngineMismatch(f"{name}: {len(header)} bytes, not a TensorRT engine (truncated?); "
                             "rebuild it")
    built = plan_version(header)
    if built is None:
        raise EngineMismatch(f"{name}: not a serialized TensorRT plan (no plan tag); was it "
                             "saved with something other than trtexec --saveEngine or "
                             "edgeseg build?")
    here = parse_version(trt_version)
    if tuple(built[:3]) != here and not (version_compatible and built[0] == here[0]
                                         and tuple(built[:3]) <= here):
        raise EngineMismatch(f"{name} was serialized by TensorRT "
                             f"{'.'.join(map(str, built))}, this machine has {trt_version}; "
                             "rebuild it here (edgeseg build ARTIFACT --backend tensorrt)")
