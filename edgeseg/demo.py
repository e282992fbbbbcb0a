"""The whole pipeline on built-in data, no downloads (`edgeseg demo`, `make demo`):

1. synthetic street scenes, 2. a BiSeNet V1 trained from scratch for a few minutes and
evaluated, 3. FP32 and FP16 artifacts (ONNX + OpenVINO IR, parity checked), 4. a calibration
set and an INT8 artifact (accuracy against FP32 on val), 5. every artifact benchmarked in
ONNX Runtime and OpenVINO next to PyTorch eager FP32 (latency and mIoU), 6. the report
(Markdown, CSV, plots), 7. an overlay of a prediction. Everything lands in one work
directory, listed at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeseg import pipeline
from edgeseg.backends import get_runner
from edgeseg.core.artifact import read_meta
from edgeseg.core.capabilities import CPU_ENGINES
from edgeseg.core.text import format_table
from edgeseg.data.datasets import open_dataset
from edgeseg.data.io import write_image_png, write_label_png
from edgeseg.data.synthetic import write_dataset
from edgeseg.evaluate import GraphPredictor
from edgeseg.pipeline import Plan
from edgeseg.runtime.overlay import overlay
from edgeseg.train import TrainConfig, train


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path
    minutes: float = 2.0
    size: tuple[int, int] = (128, 256)  # training, artifact and benchmark size
    scenes: int = 300
    iters: int = 20  # timed runs per benchmark configuration
    val_limit: int = 50
    threads: int | None = None


def _synth(cfg: DemoConfig, say) -> Path:

    h, w = cfg.size
    data = cfg.workdir / f"synth-{h}x{w}"
    if not (data / "gtFine").is_dir():
        say(f"[1/7] generating {cfg.scenes} synthetic {h}x{w} street scenes in {data}")
        write_dataset(data, cfg.scenes, cfg.size, seed=0)
    else:
        say(f"[1/7] synthetic scenes: {data} (already there)")
    return data


def _train(cfg: DemoConfig, data: Path, say, show: Callable[[str], None]) -> Path:

    ckpt = cfg.workdir / "bisenetv1-demo.pt"
    say(f"[2/7] training BiSeNet V1 from scratch for {cfg.minutes:g} min")
    r = train(TrainConfig(model="bisenetv1", data=str(data), out=str(ckpt), size=cfg.size,
                          minutes=cfg.minutes, loss="ohem", val_every=10**9,
                          threads=cfg.threads), log=say)
    m = r["metrics"]
    say(f"      {r['iterations']} iterations in {r['train_seconds']:.0f} s; evaluation on the "
        "synthetic val split (confusion matrix over the split):")
    rows = [[n, "n/a" if v is None else f"{v:.3f}"] for n, v in m["per_class_iou"].items()]
    show(format_table(["class", "IoU"], rows))
    show(f"mIoU {m['miou']:.3f} over {m['images']} val images (checkpoint: {ckpt})\n")
    return ckpt


def _overlay(cfg: DemoConfig, art: Path, data: Path, say) -> tuple[Path, Path]:

    meta = read_meta(art)
    image, _ = open_dataset(data, "val")[0]
    with get_runner("onnxruntime", art / "model.onnx", threads=cfg.threads) as runner:
        labels = GraphPredictor(runner, meta)(image)
    palette = meta["classes"]["palette"]
    over, lab = cfg.workdir / "overlay.png", cfg.workdir / "prediction.png"
    write_image_png(over, overlay(image, labels, palette, alpha=0.5))
    write_label_png(lab, labels, palette)
    say(f"[7/7] {meta['precision'].upper()} prediction of the first val image: {over} "
        f"(overlay), {lab} (labels)")
    return over, lab


def run(cfg: DemoConfig, *, say: Callable[[str], None] = print,
        show: Callable[[str], None] = print) -> dict[str, Any]:

    cfg.workdir.mkdir(parents=True, exist_ok=True)
    data = _synth(cfg, say)
    ckpt = _train(cfg, data, say, show)
    # The onnxruntime target: U8 activations, INT8 kernels in ONNX Runtime and OpenVINO.
    plan = Plan(workdir=cfg.workdir, checkpoint=ckpt, model="bisenetv1", size=cfg.size,
                precisions=("fp32", "fp16", "int8"), targets=("onnxruntime",),
                engines=("torch", *CPU_ENGINES), data=str(data), val_limit=cfg.val_limit,
                iters=cfg.iters, threads=cfg.threads)
    steps = iter(range(3, 7))
    out = pipeline.run(plan, log=say, step=lambda m: say(f"[{next(steps)}/7] {m}"))
    show((cfg.workdir / "report" / "report.md").read_text())
    arts = out.artifacts
    over, lab = _overlay(cfg, arts.get("int8-onnxruntime", arts["fp32"]), data, say)
    where = {"data": data, "checkpoint": ckpt, **{f"artifact {k}": v for k, v in arts.items()},
             "results": cfg.workdir / "results", "report": cfg.workdir / "report",
             "overlay": over, "prediction": lab}
    show("Where everything is:")
    for k, v in where.items():
        show(f"  {k:26s} {v}")
    return {"where": where, "report": out.report}
