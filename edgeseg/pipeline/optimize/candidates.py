"""What optimize measures: its configuration, the source it starts from, and the candidates."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.backends import inference_precisions, is_available
from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.checkpoint import read_checkpoint
from edgeseg.core.artifact import read_meta, sha256
from edgeseg.core.capabilities import CPU_ENGINES, ENGINES, TARGETS
from edgeseg.core.errors import MissingInput, UsageError
from edgeseg.models import list_models
from edgeseg.pipeline import Plan

Log = Callable[[str], None]
OUTPUTS = ("logits", "labels", "labels_lowres")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
# what an OpenVINO inference precision hint makes of an FP32 graph
_HINT_PRECISION = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


@dataclass(frozen=True)
class OptimizeConfig:
    source: str  # an edgeseg checkpoint, a registry model name, or an FP32 artifact
    out: str
    val: str  # dataset root: its val split scores, its train split calibrates
    max_drop: float = 0.5  # mIoU points below the FP32 graph in ONNX Runtime
    size: tuple[int, int] | None = None  # default: the artifact's, the checkpoint's, 512x1024
    engines: tuple[str, ...] = CPU_ENGINES
    precisions: tuple[str, ...] = PRECISIONS
    targets: tuple[str, ...] = tuple(TARGETS)
    outputs: tuple[str, ...] = OUTPUTS
    fused: tuple[bool, ...] = (False, True)
    finalists: int = 2
    val_limit: int | None = None
    calib_images: int = 32
    rounds: int = 20
    warmup: int = 3
    threads: int | None = None
    work: str | None = None  # default $EDGESEG_CACHE (~/.cache/edgeseg)/optimize/<source>-<size>
    throughput_seconds: float = 5.0  # the pick's frames/s with 1 and 2 streams (0: skip)
    batches: tuple[int, ...] = (1, 2, 4, 8)  # throughput per batch, on a dynamic-batch twin
    dynamic_batch: bool = False  # write the pick's dynamic-batch twin instead of the pick
    profile: bool = True  # the pick's per-operator time from its engine's profiler
    force: bool = False

    def __post_init__(self) -> None:
        for kind, names, known in (("engine", self.engines, tuple(ENGINES)),
                                   ("precision", self.precisions, PRECISIONS),
                                   ("target", self.targets, tuple(TARGETS)),
                                   ("output", self.outputs, OUTPUTS)):
            bad = [n for n in names if n not in known]
            if bad or not names:
                raise UsageError(f"optimize: unknown or no {kind}(s) {bad}; choose from "
                                 f"{', '.join(known)}")
        object.__setattr__(self, "engines", tuple(dict.fromkeys(self.engines)))
        if self.max_drop < 0:
            raise UsageError(f"--max-drop {self.max_drop}: must be >= 0 (mIoU points)")
        if not self.batches or min(self.batches) < 1:
            raise UsageError(f"optimize: batch sizes {list(self.batches)} must be >= 1")
        if self.rounds < 1 or self.warmup < 0 or self.finalists < 1:
            raise UsageError("optimize: need rounds >= 1, warmup >= 0 and finalists >= 1")


@dataclass
class Candidate:
    artifact_kind: str  # "fp32" or "int8-<target>"
    output: str
    fused: bool
    engine: str
    hint: str | None = None  # OpenVINO inference precision for the float ops
    phase: int = 1
    artifact: Path | None = None
    status: str = "pending"  # measured | refused | skipped | pruned
    why: str = ""
    miou: float | None = None
    drop: float | None = None  # points below the reference
    latency: dict[str, float] | None = None

    @property
    def precision(self) -> str:
        """What the model computes in: int8, or the float precision the engine runs."""
        if self.artifact_kind.startswith("int8"):
            return "int8" if self.hint in (None, "f32") else f"int8+{self.hint}"
        if self.artifact_kind == "fp16":
            return "fp16"
        return _HINT_PRECISION[self.hint or "f32"]

    @property
    def config(self) -> tuple:
        """The phase-1 configuration (everything but the graph I/O)."""
        return (self.artifact_kind, self.engine, self.hint)

    @property
    def variant(self) -> str:
        return self.output + ("-fused" if self.fused else "")

    @property
    def name(self) -> str:
        engine = self.engine + (f"/{self.hint}" if self.hint else "")
        return f"{self.artifact_kind} {engine} {self.variant}"

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "artifact_kind": self.artifact_kind,
                "precision": self.precision, "engine": self.engine, "hint": self.hint,
                "output": self.output, "fused_preprocess": self.fused, "phase": self.phase,
                "status": self.status, "why": self.why, "miou": self.miou,
                "drop_points": self.drop, "latency_ms": self.latency,
                "artifact": str(self.artifact) if self.artifact else None}


@dataclass
class Result:
    candidates: list[Candidate] = field(default_factory=list)
    winner: Candidate | None = None
    reference: Candidate | None = None
    system: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None
    workdir: Path | None = None
    # the pick's frames/s per artifact (pick / dynamic-batch twin) x batch x callers
    throughput: list[dict[str, Any]] = field(default_factory=list)
    batching: dict[str, Any] | None = None  # the twin: path, agreement, best batch
    profile: dict[str, Any] | None = None  # the pick's, from its engine's profiler


# -- the source and the work directory ---------------------------------------------------
@dataclass
class Source:
    plan: Plan
    key: str  # names the work directory
    fixed: dict | None = None  # an artifact that cannot be re-exported: its meta
    artifact: Path | None = None  # and its directory


def resolve_source(cfg: OptimizeConfig) -> Source:
    """A checkpoint, a registry model or an FP32 artifact -> the plan that exports it."""
    src = Path(cfg.source)
    if src.is_dir():
        meta = read_meta(src)
        if meta["precision"] != "fp32":
            raise UsageError(f"{src}: a {meta['precision']} artifact; optimize starts from an "
                             "FP32 one (or its checkpoint)")
        size = tuple(meta["input"]["size"])
        if cfg.size and tuple(cfg.size) != size:
            raise UsageError(f"{src} is exported at {size[0]}x{size[1]}; --size "
                             f"{cfg.size[0]}x{cfg.size[1]} needs its checkpoint")
        ckpt = meta["model"].get("checkpoint")
        digest = meta["model"].get("checkpoint_sha256")
        if ckpt and Path(ckpt).is_file() and digest == sha256(Path(ckpt)):
            return Source(_plan(cfg, size, checkpoint=Path(ckpt)), f"{digest[:16]}-{_hw(size)}")
        key = hashlib.sha256(json.dumps(meta["files"], sort_keys=True).encode()).hexdigest()
        return Source(_plan(cfg, size, checkpoint=None), f"artifact-{key[:16]}", fixed=meta,
                      artifact=src)
    if src.suffix in (".pt", ".pth") or src.is_file():
        if not src.is_file():
            raise MissingInput(f"{src}: checkpoint file not found")
        size = cfg.size or tuple((read_checkpoint(src).get("preprocess") or {}).get("size")
                                 or (512, 1024))
        return Source(_plan(cfg, size, checkpoint=src), f"{sha256(src)[:16]}-{_hw(size)}")
    if cfg.source in list_models():
        size = cfg.size or (512, 1024)
        return Source(_plan(cfg, size, model=cfg.source), f"model-{cfg.source}-{_hw(size)}")
    raise MissingInput(f"{cfg.source}: not a checkpoint file, an artifact directory or a "
                       f"registry model ({', '.join(list_models())})")


def _hw(size) -> str:
    return f"{size[0]}x{size[1]}"


def _plan(cfg: OptimizeConfig, size, **source) -> Plan:
    work = Path(cfg.work).expanduser() if cfg.work else DEFAULT_CACHE / "optimize"
    return Plan(workdir=work, size=tuple(size), data=cfg.val, val_limit=cfg.val_limit,
                calib_images=cfg.calib_images, threads=cfg.threads,
                quant={"max_drop": cfg.max_drop}, **source)


# -- candidates ------------------------------------------------------------------------
def engine_hints(cfg: OptimizeConfig, log: Log) -> tuple[list[tuple[str, str | None]], list]:
    """(engine, hint) pairs to measure here, and (name, why) of those that cannot run."""
    pairs, skipped = [], []
    for engine in cfg.engines:
        if engine not in CPU_ENGINES:
            skipped.append((engine, "optimize measures the CPU engines; "
                            f"{engine} is measured with `edgeseg bench` on its device"))
        elif not is_available(engine):
            skipped.append((engine, f"not installed ({ENGINES[engine].install})"))
        elif ENGINES[engine].precision_hints:
            hints = inference_precisions(engine)
            pairs += [(engine, h) for h in hints]
            for h in ENGINES[engine].precision_hints:
                if h not in hints:
                    skipped.append((f"{engine}/{h}", f"this CPU has no native {h} "
                                    f"({ENGINES[engine].title} does not offer it here)"))
        else:
            pairs.append((engine, None))
    return pairs, skipped


def graph_io(meta: dict) -> tuple[str, bool]:
    """An artifact's graph I/O: (output kind, fused uint8 input)."""
    return meta["output"]["kind"], bool(meta["input"].get("fused_preprocess"))


def first_variant(cfg: OptimizeConfig, fixed: dict | None = None) -> tuple[str, bool]:
    """Phase 1's graph I/O: logits and host preprocessing, unless they were left out; a
    fixed artifact's own (the only one it can give)."""
    if fixed is not None:
        return graph_io(fixed)
    return ("logits" if "logits" in cfg.outputs else cfg.outputs[0],
            False if False in cfg.fused else cfg.fused[0])


def phase1(cfg: OptimizeConfig, pairs, fixed: dict | None = None) -> list[Candidate]:
    """Every precision x engine (x OpenVINO hint) with phase 1's graph I/O. An INT8 graph
    runs in OpenVINO with f32 float ops, and with bf16/f16 ones when those are asked for."""
    output, fused = first_variant(cfg, fixed)
    out = []
    want = set(cfg.precisions)
    for engine, hint in pairs:
        float_precision = _HINT_PRECISION[hint or "f32"]
        if float_precision in want:
            out.append(Candidate("fp32", output, fused, engine, hint))
        if "int8" in want and (hint in (None, "f32") or float_precision in want):
            out += [Candidate(f"int8-{t}", output, fused, engine, hint) for t in cfg.targets]
    return out


def variants(cfg: OptimizeConfig) -> list[tuple[str, bool]]:
    return [(o, f) for o in cfg.outputs for f in cfg.fused]
