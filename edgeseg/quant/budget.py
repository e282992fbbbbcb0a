"""INT8 under an accuracy budget: keep the fewest layers in float until the mIoU drop
against the FP32 artifact is within `max_drop` points.

1. Quantize everything; if the drop is within budget, stop.
2. Sensitivity: for each quantized layer alone, the mIoU it gives back when it stays in
   float (on the first `sensitivity_images` val images, one re-quantization each from the
   cached calibration ranges, no re-calibration).
3. Keep the most sensitive 1, 2, 3, ... layers in float, scored on the whole tuning set,
   until the budget is met or `max_float_layers` is reached; otherwise the best step is
   returned and the report says the budget was missed there.

Every figure here comes from the tuning images (one half of the val split, accept.py): they
chose the layers, so the caller measures the drop it reports and accepts on the other half.
The search runs in the target's own arithmetic (config.ENGINE), FP32 included.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeseg.core.progress import progress_bar
from edgeseg.quant import qdq
from edgeseg.quant.config import ENGINE, mode_options
from edgeseg.quant.engines import score


def fit(*, build: Callable[[tuple[str, ...], Path], Path], work: Path, meta: dict,
        source: Path, dataset, cfg, log: Callable[[str], None] = print,
        progress: bool = True) -> dict:
    import onnx


    backend, mode = ENGINE[cfg.target]

    def miou(backend_: str, path: Path, limit: int | None) -> float:
        options = mode_options(mode) if path != source else {}
        metrics, _ = score({"m": (backend_, path, options)}, meta, dataset, limit=limit,
                           threads=cfg.threads)
        return metrics["m"].miou

    full_limit = cfg.val_limit
    sens_limit = min(cfg.sensitivity_images, cfg.val_limit or cfg.sensitivity_images)
    ref = miou(backend, source, full_limit)
    all_int8 = build((), work / "budget-all.onnx")
    m0 = miou(backend, all_int8, full_limit)
    steps = [{"float_layers": [], "miou": m0, "drop_points": 100 * (ref - m0)}]
    log(f"budget: FP32 {ref:.4f}, all layers INT8 {m0:.4f} in {backend} on "
        f"{len(dataset)} tuning images (drop {steps[0]['drop_points']:.2f} points, budget "
        f"{cfg.max_drop})")
    report = {"backend": backend, "mode": mode, "max_drop": cfg.max_drop, "reference_miou": ref,
              "tune_images": len(dataset) if full_limit is None
              else min(full_limit, len(dataset)),
              "sensitivity_images": sens_limit, "sensitivity": [], "steps": steps}
    if steps[0]["drop_points"] <= cfg.max_drop:
        return {**report, "float_layers": [], "met_on_tuning_images": True}
    candidates = qdq.quantized_compute_nodes(onnx.load(str(all_int8)))
    base = miou(backend, all_int8, sens_limit)
    gains = []
    for layer in progress_bar(candidates, desc="layer sensitivity", enable=progress,
                              unit="layer"):
        path = build((layer,), work / "budget-one.onnx")
        gains.append((layer, 100 * (miou(backend, path, sens_limit) - base)))
    gains.sort(key=lambda g: -g[1])
    report["sensitivity"] = [{"layer": k, "gain_points": g} for k, g in gains]
    log("budget: most sensitive layers (mIoU points each gives back alone): " + ", ".join(
        f"{k} {g:+.2f}" for k, g in gains[:5]))
    best, met = steps[0], False
    for k in range(1, min(cfg.max_float_layers, len(gains)) + 1):
        layers = [name for name, _ in gains[:k]]
        m = miou(backend, build(tuple(layers), work / "budget-k.onnx"), full_limit)
        step = {"float_layers": layers, "miou": m, "drop_points": 100 * (ref - m),
                "added": layers[-1], "added_gain_points": gains[k - 1][1]}
        steps.append(step)
        log(f"budget: {k} layer(s) in float (+{layers[-1]}): mIoU {m:.4f}, drop "
            f"{step['drop_points']:.2f} points")
        if m > best["miou"]:
            best = step
        if step["drop_points"] <= cfg.max_drop:
            best, met = step, True
            break
    if not met:
        log(f"budget: not met on the tuning images with up to "
            f"{min(cfg.max_float_layers, len(gains))} float layers; best: drop "
            f"{best['drop_points']:.2f} points with {len(best['float_layers'])} float layers")
    return {**report, "float_layers": best["float_layers"], "met_on_tuning_images": met}
