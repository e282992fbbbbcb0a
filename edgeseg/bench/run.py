"""`edgeseg bench`: one artifact in one backend, timed per phase, written as a result file.

Protocol (the README's "Timing methodology" states the same):
- warm-up runs first (untimed: lazy allocation, kernel selection, caches), then timed runs,
  a fixed count (`iters`) or for a wall-clock duration (`seconds`);
- every timed run is a whole frame path, each phase timed on its own: preprocess (decoded
  HxWx3 uint8 image -> graph input, resize included), compute (the engine's synchronous
  call; on CUDA split into copy in / compute / copy out by CUDA events in PyTorch and
  TensorRT, by host timers around ONNX Runtime's synchronous IO-binding calls), postprocess
  (output -> label map at the image's size); end to end is their sum, measured as one span;
- statistics: min, mean, median, p90, p99, max, std, FPS at the median;
- peak host memory of the process (ru_maxrss), device memory where the backend reports it,
  power and energy per frame where a sensor exists (edgeseg.bench.power).
"""

from __future__ import annotations

import itertools
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.backends import get_runner, model_file
from edgeseg.bench.latency import summarize
from edgeseg.bench.power import PowerSampler
from edgeseg.bench.results import SCHEMA, SCHEMA_VERSION
from edgeseg.bench.sysinfo import system_profile
from edgeseg.core.artifact import ArtifactError, dist_version, read_meta
from edgeseg.core.capabilities import CPU_ENGINES, ENGINES, engine
from edgeseg.core.devices import parse_device
from edgeseg.core.errors import UsageError
from edgeseg.core.memory import check_size
from edgeseg.core.progress import progress_bar
from edgeseg.core.shapes import dynamic_batch, size_range
from edgeseg.data.datasets import read_image
from edgeseg.evaluate import GraphPredictor, evaluate
from edgeseg.quant.config import check_val

BACKENDS = tuple(ENGINES)
DEFAULT_ITERS = 50


@dataclass(frozen=True)
class BenchConfig:
    artifact: str
    backend: str = "onnxruntime"
    iters: int | None = None  # timed runs; default DEFAULT_ITERS when seconds is not set
    seconds: float | None = None  # or: time runs for this long
    warmup: int = 5
    batch: int = 1
    threads: int | None = None
    image: str | None = None  # a real frame for the end-to-end path (default: noise)
    val: str | None = None  # also score mIoU on this dataset's val split
    val_limit: int | None = None
    device: str | None = None  # core/devices.py grammar; None: the engine's default device
    compile: bool = False  # torch backend: torch.compile
    half: bool = False  # torch backend: the module in FP16 (module.half())
    int8_kernels: bool = True
    size: tuple[int, int] | None = None  # a dynamic-size artifact: run at this H, W

    def __post_init__(self) -> None:
        backend = engine(self.backend).name  # aliases, any case; unknown names list the choices
        object.__setattr__(self, "backend", backend)
        checks = [
            (self.device is None or parse_device(self.device) is not None,
             "--device names a device"),
            (self.iters is None or self.seconds is None, "give --iters or --seconds, not both"),
            (self.size is None or self.image is None,
             "give --size or --image, not both: an --image runs at its own size (brought "
             "into a dynamic-size artifact's range)"),
            (self.iters is None or self.iters >= 1,
             f"--iters must be at least 1, got {self.iters}"),
            (self.seconds is None or self.seconds > 0,
             f"--seconds must be positive, got {self.seconds}"),
            (self.warmup >= 0, f"--warmup must be 0 or more, got {self.warmup}"),
            (self.batch >= 1, f"--batch must be at least 1, got {self.batch}"),
            (self.threads is None or self.threads >= 1,
             f"--threads must be at least 1, got {self.threads}"),
            (not self.compile or backend == "torch", "--compile applies to --backend torch"),
            (not self.half or backend == "torch", "--half applies to --backend torch"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)


def open_runner(cfg: BenchConfig, directory: Path, meta: dict):

    file = model_file(meta, cfg.backend)
    if cfg.backend == "torch":
        if meta["model"].get("source") == "import":
            raise ArtifactError("an imported ONNX has no PyTorch model; bench it with "
                                f"--backend {' or '.join(CPU_ENGINES)}")
        return get_runner("torch", directory, device=cfg.device, threads=cfg.threads,
                          compile=cfg.compile, half=cfg.half), file
    return get_runner(cfg.backend, directory / file, device=cfg.device, threads=cfg.threads,
                      int8_kernels=cfg.int8_kernels), file


def test_frame(cfg: BenchConfig, meta: dict) -> np.ndarray:
    """The decoded frame the end-to-end path starts from: --image, else noise at the
    artifact's input size (the content does not change the work done)."""
    if cfg.image:

        return read_image(Path(cfg.image))
    h, w = cfg.size or meta["input"]["size"]
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def check_size_option(meta: dict, size: tuple[int, int] | None) -> None:
    """--size: only for a dynamic-size artifact, and within its range."""
    if size is None:
        return
    rng = size_range(meta["input"])
    if rng is None:
        fixed = "x".join(map(str, meta["input"]["size"]))
        raise ArtifactError(f"--size: the artifact's graph takes {fixed} only; export it with "
                            "--dynamic size to bench several sizes with one artifact")
    (lo_h, lo_w), (hi_h, hi_w) = rng
    if not (lo_h <= size[0] <= hi_h and lo_w <= size[1] <= hi_w):
        raise ArtifactError(f"--size {size[0]}x{size[1]} is outside the artifact's size "
                            f"range {lo_h}x{lo_w}:{hi_h}x{hi_w}")


def check_batch(meta: dict, batch: int) -> None:
    fixed = meta["input"]["shape"][0]
    if not dynamic_batch(meta["input"]) and isinstance(fixed, int) and fixed != batch:
        raise ArtifactError(f"the artifact's input has a fixed batch of {fixed}; bench it with "
                            f"--batch {fixed}, or export with a dynamic batch for --batch "
                            f"{batch}")


def peak_host_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def bench(cfg: BenchConfig, *, log: Callable[[str], None] = print, progress: bool = True,
          on_output: Callable[[dict[str, np.ndarray]], None] | None = None) -> dict[str, Any]:
    """Run the protocol; return a result object (edgeseg.bench.results schema).
    `on_output` gets the engine's outputs of the last timed run (the test frame's), for a
    check against a reference without another inference."""
    directory = Path(cfg.artifact)
    meta = read_meta(directory)
    check_batch(meta, cfg.batch)
    check_size_option(meta, cfg.size)
    h, w = cfg.size or meta["input"]["size"]
    check_size(h, w, what=f"{directory}: input", batch=cfg.batch,
               classes=meta["classes"].get("num_classes", len(meta["classes"]["names"])),
               fix="use a smaller --batch")
    dataset = None
    if cfg.val:
        dataset = check_val(cfg.val, meta)
    frame = test_frame(cfg, meta)
    runner, file = open_runner(cfg, directory, meta)
    with runner:
        pred = GraphPredictor(runner, meta)
        for _ in range(cfg.warmup):
            _time_frame(cfg, runner, pred, frame, meta)
        times, e2e, power, last = _timed_runs(cfg, runner, pred, frame, meta, directory, log,
                                              progress)
        if on_output is not None:
            on_output(last)
        accuracy = None
        if dataset is not None:
            m = evaluate(pred, dataset, progress=progress, limit=cfg.val_limit)
            accuracy = {"miou": m.miou, "per_class_iou": m.per_class_iou, "val": cfg.val,
                        "images": m.images}
        device_peak = runner.device_peak_mib() if hasattr(runner, "device_peak_mib") else None
    order = ["preprocess", "copy_in", "compute", "copy_out", "postprocess"]
    phases = {k: summarize(times[k]).as_dict() for k in order if k in times}
    compute = phases["compute"]
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "artifact": _artifact_record(cfg, directory, meta),
        "backend": {"name": cfg.backend + ("-compile" if cfg.compile else "")
                    + ("-half" if cfg.half else ""), "file": file,
                    "options": {"device": cfg.device, "int8_kernels": cfg.int8_kernels,
                                "compile": cfg.compile, "half": cfg.half,
                                "version": dist_version(cfg.backend)}},
        "config": {k: v for k, v in asdict(cfg).items()
                   if k in ("iters", "seconds", "warmup", "batch", "threads", "image")}
        | {"iters": len(e2e), "size": list(pred.pipeline.run_size(frame.shape[:2]))},
        "latency_ms": compute, "phases_ms": phases,
        "end_to_end_ms": summarize(e2e).as_dict(),
        "fps": round(cfg.batch * 1000.0 / compute["median_ms"], 3),
        "memory": {"peak_host_mib": round(peak_host_mib(), 1),
                   "device_peak_mib": None if device_peak is None else round(device_peak, 1)},
        "power": power.summary(len(e2e) * cfg.batch),
        "accuracy": accuracy,
        "system": system_profile(threads=cfg.threads),
    }


def _time_frame(cfg: BenchConfig, runner, pred: GraphPredictor, frame: np.ndarray,
                meta: dict) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """One whole frame path: each phase in ms ("_e2e": the span of them all), and the
    engine's outputs."""
    name = meta["input"]["name"]
    timed_call = getattr(runner, "infer_timed", None)
    t0 = time.perf_counter()
    x = pred.prepare(frame)
    if cfg.batch > 1:
        x = np.concatenate([x] + [pred.prepare(frame) for _ in range(cfg.batch - 1)])
    t1 = time.perf_counter()
    if timed_call is not None:
        out, phases = timed_call({name: x})
    else:
        out, phases = runner.infer({name: x}), {}
    t2 = time.perf_counter()
    y = pred.pick(out)
    for b in range(cfg.batch):
        pred.finish(y[b], frame.shape[:2])
    t3 = time.perf_counter()
    phases.setdefault("compute", (t2 - t1) * 1000.0)
    return {"preprocess": (t1 - t0) * 1000.0, **phases,
            "postprocess": (t3 - t2) * 1000.0, "_e2e": (t3 - t0) * 1000.0}, out


def _timed_runs(cfg: BenchConfig, runner, pred: GraphPredictor, frame: np.ndarray,
                meta: dict, directory: Path, log: Callable[[str], None],
                progress: bool) -> tuple[dict[str, list[float]], list[float], PowerSampler,
                                         dict[str, np.ndarray]]:
    """The timed runs: (ms per phase per run, end-to-end ms per run, the power sampler,
    the last run's outputs)."""
    times: dict[str, list[float]] = {}
    e2e: list[float] = []
    out: dict[str, np.ndarray] = {}
    iters = cfg.iters if cfg.iters is not None else (None if cfg.seconds else DEFAULT_ITERS)
    what = f"{iters} runs" if iters else f"{cfg.seconds:g} s"
    log(f"bench {directory.name} in {cfg.backend}: {cfg.warmup} warm-up runs, then {what}")
    bar = progress_bar(range(iters) if iters else itertools.count(),
                       desc=f"bench {cfg.backend}", enable=progress, unit="run")
    with PowerSampler() as power:
        start = time.perf_counter()
        for _ in bar:
            r, out = _time_frame(cfg, runner, pred, frame, meta)
            e2e.append(r.pop("_e2e"))
            for k, v in r.items():
                times.setdefault(k, []).append(v)
            if cfg.seconds and time.perf_counter() - start >= cfg.seconds:
                break
    if hasattr(bar, "close"):
        bar.close()
    return times, e2e, power, out


def _artifact_record(cfg: BenchConfig, directory: Path, meta: dict) -> dict[str, Any]:
    """The result's artifact section: what was run, and the accuracy meta.json records."""
    calib = meta.get("calibration") or {}
    return {"path": str(directory.resolve()), "model": meta["model"]["name"],
            "precision": ("fp16" if cfg.half else "fp32") if cfg.backend == "torch"
            else meta["precision"],
            "artifact_precision": meta["precision"], "target": calib.get("target"),
            "input_shape": meta["input"]["shape"], "output_kind": meta["output"]["kind"],
            "onnx_sha256": meta["files"].get("model.onnx"),
            "reference_miou": (meta.get("accuracy") or {}).get("reference_miou"),
            "miou": (meta.get("accuracy") or {}).get("miou")}
