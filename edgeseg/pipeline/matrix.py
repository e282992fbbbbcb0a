"""`edgeseg bench --matrix FILE.toml`: models x precisions x backends x sizes, each cell a
result file with latency at the deployment size and mIoU from the evaluator.

Artifacts are made on demand from the trained checkpoints (export for FP32/FP16, quantize
for INT8, one INT8 artifact per backend's target) and kept in the work directory; a cell
whose result file exists and validates is skipped, so an interrupted run resumes where it
stopped. mIoU is measured at `accuracy_size` (the size the checkpoints were trained at, by
the same precision and backend): a model trained at 128x256 and fed a 4x upscaled frame
would score its scale mismatch, not its deployment. Each result records that size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeseg.bench import results
from edgeseg.bench.run import BACKENDS
from edgeseg.bench.sysinfo import device_name, system_profile
from edgeseg.core.artifact import ArtifactError, read_meta
from edgeseg.core.capabilities import CPU_ENGINES, TARGETS
from edgeseg.core.capabilities import PRECISIONS as PRECISION_TABLE
from edgeseg.core.errors import CheckFailed, EdgesegError, MissingInput, UsageError
from edgeseg.core.progress import progress_bar
from edgeseg.core.text import parse_size
from edgeseg.pipeline import Plan, bench_stage, calibration_stage, export_stage, quantize_stage

PRECISIONS = tuple(PRECISION_TABLE)
# The INT8 artifacts each backend runs: the target built for its kernels (a list runs each).
DEFAULT_INT8_TARGET = {e: [e] for e in CPU_ENGINES if e in TARGETS}


@dataclass(frozen=True)
class MatrixConfig:
    models: tuple[str, ...]
    checkpoints: str  # path pattern with {model}
    val: str | None = None
    val_limit: int | None = None
    precisions: tuple[str, ...] = ("fp32", "int8")
    backends: tuple[str, ...] = ("torch", *CPU_ENGINES)
    sizes: tuple[tuple[int, int], ...] = ((512, 1024),)
    accuracy_size: tuple[int, int] | None = None  # default: the latency size
    int8_target: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_INT8_TARGET))
    calib_images: int = 64
    # "every": every INT8 artifact must pass quantize's acceptance (agreement with FP32 on
    # held-out calibration images). "accuracy-size": only the artifact that is scored (at
    # accuracy_size) must; the latency-size one is the same recipe, its agreement measured
    # and recorded in the result but not enforced (a model fed frames far from its training
    # scale sits on near-ties that flip by rounding).
    int8_gates: str = "every"
    iters: int = 20
    warmup: int = 3
    threads: int | None = None
    work: str = "~/.cache/edgeseg/matrix"
    results: str = "benchmarks/results"

    def __post_init__(self) -> None:

        for key in ("val", "work", "results"):
            if getattr(self, key):
                object.__setattr__(self, key, str(Path(getattr(self, key)).expanduser()))

        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad:
            raise UsageError(f"matrix: unknown precisions {bad}; known: {', '.join(PRECISIONS)}")
        known = (*BACKENDS, "torch-compile")
        bad = [b for b in self.backends if b not in known]
        if bad:
            raise UsageError(f"matrix: unknown backends {bad}; known: {', '.join(known)}")
        if "{model}" not in self.checkpoints:
            raise UsageError("matrix: checkpoints must be a path pattern containing {model}")
        if self.int8_gates not in ("every", "accuracy-size"):
            raise UsageError(f"matrix: int8_gates must be 'every' or 'accuracy-size', got "
                             f"{self.int8_gates!r}")
        if self.iters < 1 or self.warmup < 0:
            raise UsageError(f"matrix: need iters >= 1 and warmup >= 0, got {self.iters} and "
                             f"{self.warmup}")


def _size(text: Any, where: str) -> tuple[int, int]:

    try:
        return parse_size(str(text))
    except Exception as e:  # argparse.ArgumentTypeError
        raise UsageError(f"matrix: {where}: {e}") from None


def load(path: str | Path) -> MatrixConfig:
    import tomllib  # Python 3.11+

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"{path}: cannot read the matrix file ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML ({e})") from None
    table = raw.get("matrix", raw)
    known = {f.name for f in fields(MatrixConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(f"{path}: unknown keys {unknown}; known: {', '.join(sorted(known))}")
    kw = dict(table)
    for key in ("models", "precisions", "backends"):
        if key in kw:
            kw[key] = tuple(kw[key])
    if "sizes" in kw:
        kw["sizes"] = tuple(_size(s, "sizes") for s in kw["sizes"])
    if "accuracy_size" in kw:
        kw["accuracy_size"] = _size(kw["accuracy_size"], "accuracy_size")
    try:
        return MatrixConfig(**kw)
    except TypeError as e:
        raise UsageError(f"{path}: {e}") from None


@dataclass(frozen=True)
class Cell:
    model: str
    size: tuple[int, int]
    precision: str
    backend: str
    target: str | None = None  # INT8: the quantization target of the artifact

    @property
    def label(self) -> str:
        t = f" ({self.target} target)" if self.target else ""
        return f"{self.model} {self.size[0]}x{self.size[1]} {self.precision}{t} {self.backend}"

    @property
    def file_name(self) -> str:
        """The result file's name (results.default_name of the result it produces)."""
        t = f"-{self.target}" if self.target else ""
        return f"{self.model}-{self.precision}{t}-{self.backend}-{self.size[0]}x{self.size[1]}" \
            "-b1.json"


def cells(cfg: MatrixConfig) -> list[Cell]:
    """Every runnable cell: the torch backends (eager, torch-compile) run the FP32 model only;
    an INT8 cell per target listed for its backend."""
    out = []
    for model in cfg.models:
        for size in cfg.sizes:
            for precision in cfg.precisions:
                for backend in cfg.backends:
                    if backend.startswith("torch") and precision != "fp32":
                        continue
                    targets = cfg.int8_target.get(backend, ["tensorrt"]) \
                        if precision == "int8" else [None]
                    for target in ([targets] if isinstance(targets, str) else targets):
                        out.append(Cell(model, size, precision, backend, target))
    return out


class Artifacts:
    """Artifacts made on demand and cached under `work`: <model>-<HxW>-<precision>[-target]."""

    def __init__(self, cfg: MatrixConfig, log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.work = Path(cfg.work)
        self.log = log
        self.failed: dict[str, str] = {}  # name -> why, so a refused artifact is tried once

    def checkpoint(self, model: str) -> Path:
        ckpt = Path(self.cfg.checkpoints.format(model=model)).expanduser()
        if not ckpt.is_file():
            raise MissingInput(f"no checkpoint for {model} at {ckpt} (train one with "
                               "`edgeseg baseline`, or point `checkpoints` elsewhere)")
        return ckpt

    def _valid(self, path: Path) -> bool:

        try:
            read_meta(path)
            return True
        except ArtifactError:
            return False

    def get(self, model: str, size: tuple[int, int], precision: str,
            target: str | None = None, gated: bool = True) -> Path:

        name = f"{model}-{size[0]}x{size[1]}-{precision}" + (f"-{target}" if target else "")
        path = self.work / name
        if self._valid(path):
            return path
        if name in self.failed:
            raise CheckFailed(self.failed[name])
        ckpt = self.checkpoint(model)
        plan = Plan(workdir=self.work, checkpoint=ckpt, size=size, data=self.cfg.val,
                    calib_images=self.cfg.calib_images, threads=self.cfg.threads)
        if precision in ("fp32", "fp16"):
            self.log(f"matrix: exporting {name}")
            return export_stage(plan, precision, path, log=self.log, data=None,
                                parity_inputs=1)
        try:
            return self._quantize(plan, model, target, path, gated)
        except EdgesegError as e:
            self.failed[name] = str(e)
            raise

    def _quantize(self, plan: Plan, model: str, target: str | None, path: Path,
                  gated: bool) -> Path:

        size = plan.size
        fp32 = self.get(model, size, "fp32")
        calib = self.work / f"calib-{size[0]}x{size[1]}"
        if not (calib / "calibration.json").is_file():
            if not self.cfg.val:
                raise UsageError("matrix: INT8 cells need `val` (a dataset to draw the "
                                 "calibration set from)")
            calibration_stage(plan, calib, log=self.log)
        self.log(f"matrix: quantizing {path.name}" + ("" if gated else " (accuracy "
                                                          "recorded, not enforced)"))
        waive = {} if gated else {"min_fp32_agreement": 0.0}
        # label-free acceptance, as quantize's default: the val images score the cells
        quantize_stage(plan, fp32, calib, target or "tensorrt", path, log=self.log, val=None,
                       val_limit=None, range_cache=str(self.work / "ranges"), **waive)
        return path


def run(cfg: MatrixConfig, *, force: bool = False, progress: bool = True,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every cell not already done; returns {"done": [...], "skipped": [...],
    "failed": [(label, message)]}."""

    arts = Artifacts(cfg, log)
    out_dir = Path(cfg.results) / device_name(system_profile(threads=cfg.threads))
    todo = cells(cfg)
    summary: dict[str, Any] = {"done": [], "skipped": [], "failed": [], "dir": out_dir}
    bar = progress_bar(todo, desc="matrix", enable=progress, unit="cell")
    for cell in bar:
        target = cell.target
        dest = out_dir / cell.file_name
        if dest.is_file() and not force:
            try:
                results.load(dest)
                summary["skipped"].append(cell.label)
                continue
            except results.ResultError as e:
                log(f"matrix: redoing {cell.label}: {e}")
        try:
            acc_size = cfg.accuracy_size or cell.size
            acc_art = None
            if cfg.val and acc_size != cell.size:  # the scored artifact first: it is gated
                try:
                    acc_art = arts.get(cell.model, acc_size, cell.precision, target)
                except EdgesegError as e:
                    raise CheckFailed(f"the scored {acc_size[0]}x{acc_size[1]} artifact: "
                                      f"{e}") from e
            gated = cfg.int8_gates == "every" or acc_art is None
            art = arts.get(cell.model, cell.size, cell.precision, target, gated=gated)
            compiled = cell.backend == "torch-compile"
            backend = "torch" if compiled else cell.backend
            # torch.compile compiles on the first call: the warm-up absorbs it
            plan = Plan(workdir=arts.work, checkpoint=arts.checkpoint(cell.model), size=cell.size,
                        iters=cfg.iters, warmup=max(cfg.warmup, 1), threads=cfg.threads)
            r = bench_stage(plan, art, backend, score=False, log=log, compile=compiled)
            if cell.precision == "int8":
                r["artifact"]["int8_gates"] = gate_record(art)
            # torch.compile runs the eager FP32 model re-traced: its mIoU is not re-measured
            if cfg.val and not compiled:
                acc_art = acc_art or art
                a = bench_stage(plan, acc_art, cell.backend, log=log, progress=progress,
                                iters=1, warmup=0, val=cfg.val, val_limit=cfg.val_limit)
                r["accuracy"] = {**a["accuracy"], "size": f"{acc_size[0]}x{acc_size[1]}",
                                 "artifact": a["artifact"]["path"]}
                if cell.precision == "int8":
                    r["accuracy"]["int8_gates"] = gate_record(acc_art)
            results.write(r, dest)
            summary["done"].append(cell.label)
        except Exception as e:  # noqa: BLE001 (a batch job: one cell's failure is recorded)
            why = str(e) if isinstance(e, EdgesegError) else f"{type(e).__name__}: {e}"
            log(f"matrix: {cell.label} failed: {why}")
            summary["failed"].append((cell.label, why))
    return summary


def gate_record(artifact: Path) -> dict[str, Any]:
    """Whether quantize enforced its acceptance limit on an INT8 artifact, what it measured
    (against FP32 in the target's engine), and the ONNX Runtime vs OpenVINO agreement (a
    diagnostic), from its meta.json."""

    meta = read_meta(artifact, verify=False)
    acceptance = meta.get("acceptance") or {}
    agreement = (meta.get("parity") or {}).get("backend_agreement") or {}
    enforced = bool(acceptance) and (acceptance["criterion"] != "fp32_agreement"
                                     or acceptance["limit"] > 0)
    return {"enforced": enforced, "acceptance": acceptance, "backend_agreement": agreement}
