"""The trainer: from a dataset and a registered model to a checkpoint with metadata.

SGD or AdamW, poly schedule with linear warm-up, cross-entropy or OHEM with an ignore index,
the model's auxiliary losses (weights from `model.aux_weights`), AMP on CUDA, periodic
validation with the evaluator, resume, a progress bar with loss and ETA, and an optional
wall-clock budget (`minutes`) that sizes the schedule from the measured step time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.checkpoint import load_state, read_checkpoint, save_checkpoint
from edgeseg.core.devices import parse_device
from edgeseg.core.errors import EngineUnavailable, UsageError
from edgeseg.core.memory import check_size
from edgeseg.core.progress import progress_bar
from edgeseg.data.datasets import open_dataset
from edgeseg.data.transforms import Augment, Preprocess
from edgeseg.evaluate import TorchPredictor, evaluate
from edgeseg.models import create_model
from edgeseg.train.config import (  # noqa: F401 (the public training API)
    TrainBatches,
    TrainConfig,
    aux_loss,
    median_frequency_weights,
    native_cpu_bf16,
    poly_lr,
    seg_loss,
)


def _device(name: str):
    import torch

    if name == "auto":
        name = "gpu" if torch.cuda.is_available() else "cpu"
    device = parse_device(name)
    if device.kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise EngineUnavailable(f"--device {device}: torch sees no CUDA GPU; use --device cpu, "
                                "or install a CUDA build of torch on a machine with a GPU")
    return torch.device(f"cuda:{device.index or 0}")


@dataclass
class _Run:
    """One training run's objects: what every step, validation and checkpoint reads."""
    model: Any
    opt: Any
    scaler: Any
    batches: TrainBatches
    device: Any
    amp_dtype: Any  # None: no autocast
    class_weight: Any
    preprocess: Preprocess
    val_set: Any
    ignore_index: int
    meta: dict


@dataclass
class _Schedule:
    """Where the run stands; the loop moves it on and checkpoints record it."""
    start: int
    total: int
    history: list
    t0: float
    planned: int | None = None  # set when the budget cuts the schedule short
    metrics: dict[str, Any] | None = None
    loss: float = float("nan")


def train(cfg: TrainConfig, *, resume: str | None = None, progress: bool = True,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, validate periodically, write `cfg.out`; return the final checkpoint's metadata
    (iterations, seconds, val metrics). With `resume`, continue a checkpoint exactly where it
    stopped (weights, optimizer, data order, RNGs); an `iters` different from the
    checkpoint's own re-plans the schedule to that many iterations."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run = _setup(cfg, log)
    start, total, history, spent = 0, cfg.iters, [], 0.0
    if resume:
        start, total, history, spent = _resume(run, cfg, resume, log)
    sched = _Schedule(start=start, total=total, history=history,
                      t0=time.perf_counter() - spent)
    _steps(run, cfg, sched, progress, log)
    if sched.metrics is None or sched.metrics["iteration"] != sched.total:
        sched.metrics = _validate(run, cfg, sched.total)
        _checkpoint(run, cfg, sched, sched.total, log)
    return {"iterations": sched.total, "planned_iterations": sched.planned or sched.total,
            "train_seconds": time.perf_counter() - sched.t0, "metrics": sched.metrics,
            "out": str(Path(cfg.out))}


def _setup(cfg: TrainConfig, log: Callable[[str], None]) -> _Run:
    """Data, model, optimizer, mixed precision and class weights, freshly initialised."""
    import torch

    device = _device(cfg.device)
    train_set = open_dataset(cfg.data, "train", skip_missing=cfg.skip_missing)
    val_set = open_dataset(cfg.data, "val", skip_missing=cfg.skip_missing)
    classes = train_set.classes
    check_size(*(cfg.crop or cfg.size), batch=cfg.batch, classes=classes.num_classes,
               fix="train at a smaller --size/--crop or --batch")
    preprocess = Preprocess(size=tuple(cfg.size), resize=cfg.resize)
    augment = Augment(size=tuple(cfg.size), keep_aspect=cfg.resize == "letterbox",
                      crop=tuple(cfg.crop) if cfg.crop else None)
    model = create_model(cfg.model, num_classes=classes.num_classes, **cfg.model_options)
    model.to(device).train()
    opt = _optimizer(cfg, model)
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    batches = TrainBatches(train_set, preprocess, augment, cfg.batch, cfg.seed)
    class_weight = _class_weight(cfg, train_set, device, log)
    meta = {"model": {"name": cfg.model, "options": dict(cfg.model_options),
                      "num_classes": classes.num_classes},
            "classes": classes.to_dict(), "preprocess": preprocess.to_dict()}
    return _Run(model=model, opt=opt, scaler=scaler, batches=batches, device=device,
                amp_dtype=amp_dtype, class_weight=class_weight, preprocess=preprocess,
                val_set=val_set, ignore_index=classes.ignore_index, meta=meta)


def _optimizer(cfg: TrainConfig, model):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _amp_dtype(cfg: TrainConfig, device):
    """The autocast dtype, or None for none."""
    import torch

    # auto: FP16 with loss scaling on CUDA; bf16 (CPUs with AVX-512 BF16 or AMX, and
    # GPUs) needs no scaler and measured ~1.9x faster SegNet steps on this CPU.
    if cfg.amp == "bf16" and device.type == "cpu" and not native_cpu_bf16():
        raise UsageError("--amp bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX); "
                         "autocast would emulate it, far slower than FP32 (SegNet: 6 steps in "
                         "20 minutes on an AVX2 host); use --amp off")
    return {"auto": torch.float16 if device.type == "cuda" else None,
            "bf16": torch.bfloat16, "off": None}[cfg.amp]


def _class_weight(cfg: TrainConfig, train_set, device, log: Callable[[str], None]):
    """The loss's per-class weights on `device`, or None for unweighted."""
    import torch

    if cfg.class_weights != "median-freq":
        return None
    w = median_frequency_weights(train_set)
    log("class weights (median frequency): " + ", ".join(
        f"{n} {v:.2f}" for n, v in zip(train_set.classes.names, w)))
    return torch.from_numpy(w).to(device)


def _resume(run: _Run, cfg: TrainConfig, path: str,
            log: Callable[[str], None]) -> tuple[int, int, list, float]:
    """Restore `run` from the checkpoint at `path`; returns (start iteration, total
    iterations, history, seconds already spent)."""
    import torch

    ck = read_checkpoint(path)
    load_state(run.model, ck["state_dict"], path)
    run.opt.load_state_dict(ck["optimizer"])
    run.scaler.load_state_dict(ck["scaler"])
    run.batches.restore(ck["data_state"])
    torch.set_rng_state(ck["torch_rng"])
    start, history = int(ck["iteration"]), list(ck["history"])
    spent = float(ck["train_seconds"])
    planned = int(ck["train"]["iters"])
    total = cfg.iters if cfg.iters != planned else int(ck["train"]["total_iters"])
    log(f"resumed {path} at iteration {start}/{total}")
    return start, total, history, spent


def _steps(run: _Run, cfg: TrainConfig, sched: _Schedule, progress: bool,
           log: Callable[[str], None]) -> None:
    """Step from `sched.start` to the end of the schedule (or of the budget), validating
    and checkpointing every `val_every` steps and at the end."""
    budget = cfg.minutes * 60 if cfg.minutes else None
    bar = progress_bar(range(sched.start, 10**9), desc=f"train {cfg.model}", enable=progress,
                       unit="step", total=max(0, sched.total - sched.start))
    step_times: list[float] = []
    for it in bar:
        if it >= sched.total:
            break
        if budget and time.perf_counter() - sched.t0 > budget:
            log(f"stopping at iteration {it} of {sched.total}: the {cfg.minutes:g} min budget "
                "is spent (the schedule did not finish)")
            sched.planned, sched.total = sched.total, it
            break
        ts = time.perf_counter()
        sched.loss = _step(run, cfg, it, sched.total)
        step_times.append(time.perf_counter() - ts)
        if budget and len(step_times) == 5 and sched.start == 0:
            left = budget - (time.perf_counter() - sched.t0)
            sched.total = _budget_total(cfg, step_times, it, left, len(run.val_set))
            bar.total = sched.total - sched.start
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{sched.loss:.3f}",
                            lr=f"{run.opt.param_groups[0]['lr']:.2e}", refresh=False)
        done = it + 1
        if done % cfg.val_every == 0 or done == sched.total:
            sched.metrics = _validate(run, cfg, done)
            _checkpoint(run, cfg, sched, done, log)
    if hasattr(bar, "close"):
        bar.close()


def _step(run: _Run, cfg: TrainConfig, it: int, total: int) -> float:
    """One optimizer step on the next batch; returns its loss."""
    import torch

    for g in run.opt.param_groups:
        g["lr"] = poly_lr(cfg, it, total)
    x, y = run.batches.next()
    x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
    with torch.autocast(run.device.type, dtype=run.amp_dtype or torch.float32,
                        enabled=run.amp_dtype is not None):
        out = run.model(x)
    loss = seg_loss(out.main.float(), y, cfg, run.ignore_index, run.class_weight)
    for w, kind, aux in zip(run.model.aux_weights, run.model.aux_kinds, out.aux):
        loss = loss + w * aux_loss(kind, aux.float(), y, cfg, run.ignore_index,
                                   run.class_weight)
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        raise FloatingPointError(f"loss became {loss_value} at iteration {it}; the weights "
                                 "were not updated; lower --lr or check the labels")
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.opt)
    run.scaler.update()
    return loss_value


def _budget_total(cfg: TrainConfig, step_times: list[float], it: int, left: float,
                  val_images: int) -> int:
    """The schedule's length that fits the `left` seconds after step `it`."""
    # Size the schedule to the budget: each step costs its measured time plus its
    # share of validation, estimated as one forward (a third of a training step)
    # per val image every `val_every` steps.
    per = float(np.median(step_times))
    n_val = min(val_images, cfg.val_limit or val_images)
    per_step = per + n_val * per / (3 * cfg.batch) / cfg.val_every
    return max(it + 2, it + 1 + int(0.95 * left / per_step))


def _validate(run: _Run, cfg: TrainConfig, it: int) -> dict[str, Any]:
    run.model.eval()
    m = evaluate(TorchPredictor(run.model, run.preprocess), run.val_set, limit=cfg.val_limit)
    run.model.train()
    return {"iteration": it, **m.to_dict()}


def _checkpoint(run: _Run, cfg: TrainConfig, sched: _Schedule, it: int,
                log: Callable[[str], None]) -> None:
    """Record iteration `it` in the history and save the checkpoint at `cfg.out`."""
    import torch

    metrics, loss = sched.metrics, sched.loss
    sched.history.append({"iteration": it, "loss": round(loss, 5), "miou": metrics["miou"],
                          "seconds": round(time.perf_counter() - sched.t0, 1)})
    save_checkpoint(cfg.out, {
        **run.meta, "train": {**cfg.to_dict(), "total_iters": sched.total}, "iteration": it,
        "train_seconds": time.perf_counter() - sched.t0, "metrics": metrics,
        "history": sched.history, "state_dict": run.model.state_dict(),
        "optimizer": run.opt.state_dict(), "scaler": run.scaler.state_dict(),
        "data_state": run.batches.state(), "torch_rng": torch.get_rng_state()})
    log(f"iteration {it}/{sched.total}: loss {loss:.3f}, val mIoU {metrics['miou']:.4f}")
