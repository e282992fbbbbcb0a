"""FP32 accuracy baselines: train each model on the synthetic set within a wall-clock budget
and record what it reached, as `benchmarks/baselines.{json,md}`.

These are the references every exported, quantized or ported artifact is judged against.
Checkpoints go to a cache outside the repository (weights are not committed).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeseg.bench.sysinfo import isa
from edgeseg.core.errors import InputError, UsageError
from edgeseg.data.datasets import open_dataset
from edgeseg.evaluate import evaluate
from edgeseg.train import TrainConfig, native_cpu_bf16, train

# Per-model recipe for 128x256 CPU training: OHEM (as BiSeNet trains on Cityscapes) to keep
# the thin and small classes in the loss. SegNet is ~10x heavier per sample than the others
# here, so it trains longer and with bf16 autocast (~1.9x faster steps on this CPU); in FP32
# it reached 0.455 (batch 4, lr 1e-3) and 0.414 (batch 2, lr 2e-3) mIoU in 20 minutes, and
# with bf16 and OHEM 0.483 with person and pole at IoU 0: it needs SegNet's own recipe,
# median frequency class weights, to learn the rare thin classes in 20 minutes. On a CPU
# without native bf16 (AVX2 only) an FP32 step takes ~5 s: 64x128 crops (recipe key
# "crop_scale": 0.5) gave 739 steps and 0.332 mIoU in 20 minutes, the same pixels seen as
# ~185 full-size steps; SegNet needs bf16 or a faster CPU to reach 0.50 in 20 minutes.
RECIPES: dict[str, dict[str, Any]] = {
    "bisenetv1": {"batch": 8, "lr": 2e-3, "loss": "ohem", "minutes": 15},
    "bisenetv2": {"batch": 8, "lr": 2e-3, "loss": "ohem", "minutes": 15},
    "icnet": {"batch": 8, "lr": 2e-3, "loss": "ohem", "minutes": 15},
    "deeplabv3plus": {"batch": 8, "lr": 2e-3, "loss": "ohem", "minutes": 15},
    # The same family with the Xception backbone (a recipe name, the model's own option).
    "deeplabv3plus-xception": {"model": "deeplabv3plus", "options": {"backbone": "xception"},
                               "batch": 8, "lr": 2e-3, "loss": "ohem", "minutes": 15},
    "segnet": {"batch": 4, "lr": 1e-3, "loss": "ce", "class_weights": "median-freq",
               "minutes": 20, "amp": "bf16-if-native", "val_every": 1000},
    # The real-time families of issue 21, on the classics' recipe and budget.
    **{name: {"batch": 8, "lr": 2e-3, "loss": "ohem", "minutes": 15}
       for name in ("fastscnn", "ddrnet", "pidnet", "stdc", "segformer")},
}
DEFAULT_CACHE = Path(os.environ.get("EDGESEG_CACHE", Path.home() / ".cache" / "edgeseg"))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def train_command(model: str, data: str, out: str, size: tuple[int, int], minutes: float | None,
                  recipe: dict[str, Any], seed: int, iters: int | None = None) -> list[str]:
    h, w = size
    opts = [a for k, v in recipe.get("options", {}).items() for a in ("--opt", f"{k}={v}")]
    return ["edgeseg", "train", "--model", recipe.get("model", model), *opts,
            "--data", data, "--out", out,
            "--size", f"{h}x{w}",
            *(["--iters", str(iters)] if iters else ["--minutes", f"{minutes:g}"]),
            "--batch", str(recipe["batch"]),
            "--lr", f"{recipe['lr']:g}", "--loss", recipe["loss"],
            "--val-every", str(recipe.get("val_every", 200)), "--seed", str(seed),
            *(["--class-weights", recipe["class_weights"]] if "class_weights" in recipe else []),
            *(["--crop", "x".join(map(str, recipe["crop"]))] if "crop" in recipe else []),
            *(["--amp", recipe["amp"]] if "amp" in recipe else [])]


def run(models: list[str], *, data: str, bench_dir: Path, cache: Path = DEFAULT_CACHE,
        size: tuple[int, int] = (128, 256), minutes: float | None = None,
        iters: int | None = None, seed: int = 0,
        progress: bool = True, log: Callable[[str], None] = print,
        data_command: str | None = None) -> list[dict[str, Any]]:
    """Train each model (for `minutes`, its recipe's budget, or a fixed number of `iters`
    whatever the machine's load), then merge its result into
    bench_dir/baselines.json (replacing an older entry for the same model) and regenerate
    baselines.md."""
    unknown = [m for m in models if m not in RECIPES]
    if unknown:
        raise UsageError(f"no baseline recipe for {unknown}; known: {', '.join(RECIPES)}")
    results = load_results(bench_dir / "baselines.json")
    write_chance(bench_dir, data, seed)
    for model in models:
        recipe = _machine_recipe(model, size, log)
        budget = None if iters else minutes or recipe["minutes"]
        out = cache / "baselines" / f"{model}-{size[0]}x{size[1]}.pt"
        cmd = train_command(model, data, str(out), size, budget, recipe, seed, iters)
        log(f"baseline {model}: {shlex.join(cmd)}")
        cfg = _train_config(model, recipe, data=data, out=out, size=size, budget=budget,
                            iters=iters, seed=seed)
        t0 = time.time()
        r = train(cfg, progress=progress, log=log)
        entry = _result_entry(model, recipe, r, size=size, budget=budget, cmd=cmd,
                              data_command=data_command, out=out, t0=t0)
        results = [e for e in results if e["model"] != model] + [entry]
        results.sort(key=lambda e: list(RECIPES).index(e["model"]))
        write_results(bench_dir, results)
        log(f"baseline {model}: val mIoU {entry['miou']:.4f} after {entry['iters']} iterations")
    return results


def _machine_recipe(model: str, size: tuple[int, int],
                    log: Callable[[str], None]) -> dict[str, Any]:
    """The model's recipe as this machine trains it: bf16 where native, crops sized."""
    recipe = dict(RECIPES[model])
    if recipe.get("amp") == "bf16-if-native":
        # bf16 autocast is ~1.9x faster on CPUs with native bf16 and ruinous without.
        if native_cpu_bf16():
            recipe["amp"] = "bf16"
        else:
            del recipe["amp"]
            log(f"baseline {model}: this CPU has no native bf16; training in FP32")
    if "crop_scale" in recipe:  # train on crops this fraction of each side of the input
        recipe["crop"] = tuple(max(1, round(n * recipe.pop("crop_scale"))) for n in size)
    return recipe


def _train_config(model: str, recipe: dict[str, Any], *, data: str, out: Path,
                  size: tuple[int, int], budget: float | None, iters: int | None,
                  seed: int) -> TrainConfig:
    return TrainConfig(model=recipe.get("model", model),
                       model_options=dict(recipe.get("options", {})), data=data,
                       out=str(out), size=size, minutes=budget,
                       **({"iters": iters} if iters else {}),
                       batch=recipe["batch"], lr=recipe["lr"], loss=recipe["loss"],
                       amp=recipe.get("amp", "auto"),
                       class_weights=recipe.get("class_weights", "none"),
                       crop=tuple(recipe["crop"]) if "crop" in recipe else None,
                       val_every=recipe.get("val_every", 200), seed=seed)


def _result_entry(model: str, recipe: dict[str, Any], r: dict[str, Any], *,
                  size: tuple[int, int], budget: float | None, cmd: list[str],
                  data_command: str | None, out: Path, t0: float) -> dict[str, Any]:
    """baselines.json's entry for one trained model (`r`: what train returned)."""
    import torch

    m = r["metrics"]
    return {
        "model": model, "size": f"{size[0]}x{size[1]}", "iters": r["iterations"],
        "planned_iters": r["planned_iterations"],
        "batch": recipe["batch"], "lr": recipe["lr"],
        "loss": recipe["loss"], "class_weights": recipe.get("class_weights", "none"),
        **({"crop": "x".join(map(str, recipe["crop"]))} if "crop" in recipe else {}),
        "train_seconds": round(r["train_seconds"], 1),
        "budget_minutes": budget,
        "miou": round(m["miou"], 4),
        "per_class_iou": {k: (None if v is None else round(v, 4))
                          for k, v in m["per_class_iou"].items()},
        "pixel_accuracy": round(m["pixel_accuracy"], 4), "val_images": m["images"],
        "command": shlex.join(cmd), "data_command": data_command, "checkpoint": str(out),
        "machine": {"cpu": cpu_name(), "isa": isa(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%d", time.gmtime(t0)),
    }


def chance_levels(data: str, seed: int = 0) -> dict[str, Any]:
    """mIoU of three predictors that look at no pixels, on the val split: uniform random
    classes, the most frequent training class everywhere, and the per-position prior (each
    pixel's most frequent training class, i.e. what the scene layout alone gives). A trained
    model must beat the last one by a wide margin for the data to be informative."""
    import numpy as np


    train_set, val_set = open_dataset(data, "train"), open_dataset(data, "val")
    n = train_set.classes.num_classes
    _, first = train_set[0]
    counts = np.zeros((first.size, n), np.int64)
    for i in range(len(train_set)):
        lab = train_set[i][1].ravel().astype(np.int64)
        if lab.size != first.size:
            raise UsageError("chance levels need equally sized training masks")
        keep = lab != train_set.classes.ignore_index
        counts += np.bincount(np.flatnonzero(keep) * n + lab[keep],
                              minlength=lab.size * n).reshape(-1, n)
    prior = counts.argmax(1).astype(np.uint8).reshape(first.shape)
    majority = int(counts.sum(0).argmax())
    rng = np.random.default_rng(seed)
    results = {
        "uniform_random": evaluate(lambda im: rng.integers(0, n, im.shape[:2]), val_set).miou,
        "majority_class": evaluate(lambda im: np.full(im.shape[:2], majority), val_set).miou,
        "position_prior": evaluate(lambda im: prior, val_set).miou,
    }
    return {k: round(v, 4) for k, v in results.items()} | {"data": data}


def load_results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of baseline results")
    return data


def write_chance(bench_dir: Path, data: str, seed: int = 0) -> dict[str, Any]:
    bench_dir.mkdir(parents=True, exist_ok=True)
    chance = chance_levels(data, seed)
    (bench_dir / "baselines_chance.json").write_text(json.dumps(chance, indent=2) + "\n")
    return chance


def write_results(bench_dir: Path, results: list[dict[str, Any]]) -> None:
    bench_dir.mkdir(parents=True, exist_ok=True)
    tmp = bench_dir / ".baselines.json.tmp"
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, bench_dir / "baselines.json")
    chance_file = bench_dir / "baselines_chance.json"
    chance = json.loads(chance_file.read_text()) if chance_file.is_file() else None
    (bench_dir / "baselines.md").write_text(render_markdown(results, chance))


def render_table(results: list[dict[str, Any]]) -> str:
    """The Markdown table of results (one row per model, per-class IoU columns)."""
    classes = list(results[0]["per_class_iou"]) if results else []
    head = ["model", "size", "batch", "iters", "train time", "val mIoU", *classes]
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join(["---", "---"] + ["---:"] * (len(head) - 2)) + " |"]
    for e in results:
        cells = [e["model"], e["size"], str(e["batch"]), str(e["iters"]),
                 f"{e['train_seconds'] / 60:.1f} min", f"{e['miou']:.3f}"]
        cells += ["n/a" if e["per_class_iou"].get(c) is None else f"{e['per_class_iou'][c]:.3f}"
                  for c in classes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(results: list[dict[str, Any]], chance: dict | None = None) -> str:
    lines = [
        "# FP32 baselines on the synthetic street scenes",
        "",
        ("Generated by `edgeseg baseline` (do not edit): each model trained from scratch on "
         "this machine's CPU within its wall-clock budget, evaluated on the synthetic val "
         "split (confusion matrix over the whole split). Per-class columns are IoU."),
        "",
        render_table(results).rstrip("\n"),
        "",
    ]
    if chance:
        lines += [
            (f"Chance levels on the same val split (mIoU of predictors that see no pixels): "
             f"uniform random classes {chance['uniform_random']:.3f}, the majority class "
             f"everywhere {chance['majority_class']:.3f}, each position's most frequent "
             f"training class (the scene layout alone) {chance['position_prior']:.3f}."),
            "",
        ]
    lines += [
        "Exact commands:",
        "",
    ]
    for e in results:
        mach = e["machine"]
        weights = ("" if e.get("class_weights", "none") == "none"
                   else f" with {e['class_weights']} class weights")
        data = f" after `{e['data_command']}`" if e.get("data_command") else ""
        planned = e.get("planned_iters")
        if e.get("budget_minutes") is None:
            again = " (a fixed schedule, whatever the machine's load)"
        elif planned == e["iters"]:
            fixed = re.sub(r"--minutes \S+", f"--iters {e['iters']}", e["command"])
            again = f"; the same schedule without the wall clock: `{fixed}`"
        else:
            again = (f"; the budget ran out at iteration {e['iters']} of "
                     f"{planned or 'an unrecorded number'} planned (the machine was busy), so "
                     "the schedule did not finish")
        cpu = mach["cpu"] + (f" ({mach['isa']})" if mach.get("isa") else "")
        lines.append(f"- {e['model']} ({e['date']}, {cpu}, {mach['threads']} threads, "
                     f"torch {mach['torch']}, {e.get('loss', 'ce')} loss{weights}, "
                     f"lr {e['lr']:g}): "
                     f"`{e['command']}`{data}{again}")
    return "\n".join(lines) + "\n"
