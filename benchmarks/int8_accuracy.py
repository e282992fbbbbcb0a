"""INT8 accuracy of the trained baselines: each model's FP32 artifact quantized for every
target, scored against FP32 on the synthetic val split in ONNX Runtime and OpenVINO, plus
the tensorrt target under `--max-drop 0.5`; writes benchmarks/int8_accuracy.{json,md}.

    python benchmarks/int8_accuracy.py [--models ...] [--data DIR] [--out benchmarks]

Needs the baseline checkpoints in the cache (`edgeseg baseline`) and the synthetic data
they were trained on. Artifacts are at the training size (128x256), where mIoU means what
baselines.md means.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from edgeseg.baseline import DEFAULT_CACHE, RECIPES, cpu_name
from edgeseg.export.exporter import ExportConfig, export
from edgeseg.quant.calib import build
from edgeseg.quant.config import TARGETS, QuantConfig, QuantizationError
from edgeseg.quant.int8 import quantize
from edgeseg.quant.nncf_route import quantize_nncf

SIZE = (128, 256)


def nncf_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("nncf") is not None


def run(models: list[str], data: str, cache: Path, out_dir: Path, calib_images: int,
        budget: float, merge: bool, nncf_models: tuple[str, ...] = ("bisenetv1",)
        ) -> list[dict]:
    path = out_dir / "int8_accuracy.json"
    rows = json.loads(path.read_text()) if merge and path.is_file() else []
    with tempfile.TemporaryDirectory(prefix="edgeseg-int8-") as tmp:
        work = Path(tmp)
        calib = None
        for model in models:
            ckpt = cache / "baselines" / f"{model}-{SIZE[0]}x{SIZE[1]}.pt"
            if not ckpt.is_file():
                print(f"[{model}] no checkpoint at {ckpt}; run `edgeseg baseline` first",
                      flush=True)
                continue

            def log(s, m=model):
                print(f"[{m}] {s}", flush=True)

            fp32 = work / f"{model}-fp32"
            export(ExportConfig(out=str(fp32), checkpoint=str(ckpt), size=SIZE), log=log)
            if calib is None:
                calib = build(work / "calib", size=SIZE, data=data, num=calib_images,
                              progress=False, log=log)
            runs = [(t, None, "qdq") for t in TARGETS] + [("openvino", None, "nncf"),
                                                           ("tensorrt", budget, "qdq")]
            for target, max_drop, route in runs:
                if route == "nncf" and model not in nncf_models:
                    continue
                if route == "nncf" and not nncf_available():
                    log("NNCF is not installed: no NNCF row (pip install 'edgeseg[nncf]')")
                    continue
                t0 = time.time()
                cfg = QuantConfig(artifact=str(fp32), calib=str(calib.root),
                                  out=str(work / f"{model}-{target}-{max_drop}-{route}"),
                                  target=target, val=data, max_drop=max_drop,
                                  range_cache=str(work / "ranges"))
                try:
                    meta = (quantize_nncf if route == "nncf" else quantize)(cfg, log=log,
                                                                            progress=False)
                except QuantizationError as e:
                    log(f"REFUSED: {e}")
                    rows = [r for r in rows if (r["model"], r["target"], r["max_drop"],
                                                r["route"]) != (model, target, max_drop, route)]
                    rows.append({"model": model, "target": target, "route": route,
                                 "max_drop": max_drop, "refused": str(e)})
                    write(out_dir, rows, data)
                    continue
                acc, cal = meta["accuracy"], meta["calibration"]
                agree = meta["parity"]["backend_agreement"]
                row = {
                    "model": model, "size": f"{SIZE[0]}x{SIZE[1]}", "target": target,
                    "route": route,
                    "max_drop": max_drop, "method": cal.get("method", "nncf default"),
                    "activations": cal["activations"],
                    "weight_bits": cal.get("weight_bits", "8-bit (7 first layer)"),
                    "calibration_images": cal["images"], "val_images": acc["images"],
                    "mode": acc["mode"], "miou_fp32": acc["reference_miou"],
                    "miou": acc["miou"], "drop_points": acc["drop_points"],
                    "agreement_ort_ov": agree.get("onnxruntime_vs_openvino"),
                    "agreement_with_fp32": {
                        k.split("|", 1)[1]: v for k, v in acc["agreement"].items()
                        if k.startswith("fp32|")},
                    "per_class_iou": acc["per_class_iou"],
                    "float_layers": cal["float_layers"],
                    "seconds": round(time.time() - t0, 1),
                }
                if "budget" in acc:
                    b = acc["budget"]
                    row["budget"] = {k: b[k] for k in ("budget_met", "final_drop_points",
                                                       "steps", "backend", "mode")}
                    row["budget"]["top_sensitivity"] = b["sensitivity"][:8]
                rows = [r for r in rows if (r["model"], r["target"], r["max_drop"], r["route"])
                        != (model, target, max_drop, route)] + [row]
                rows.sort(key=lambda r: (list(RECIPES).index(r["model"]),
                                         r["max_drop"] is not None, r["route"] == "nncf",
                                         list(TARGETS).index(r["target"])))
                write(out_dir, rows, data)
    return rows


def write(out_dir: Path, rows: list[dict], data: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"cpu": cpu_name(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d", time.gmtime())}
    (out_dir / "int8_accuracy.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out_dir / "int8_accuracy.md").write_text(markdown(rows, data, meta))


def bits(b) -> str:
    return f"{b}-bit" if isinstance(b, int) else str(b)


def _worst_classes(row: dict, engine: str, n: int = 2) -> str:
    fp = row["per_class_iou"]["fp32"]
    q = row["per_class_iou"][f"int8-{engine}"]
    lost = sorted(((fp[c] or 0) - (q[c] or 0), c) for c in fp)[::-1][:n]
    return ", ".join(f"{c} -{100 * d:.1f}" for d, c in lost if d > 0) or "none"


def markdown(rows: list[dict], data: str, machine: dict) -> str:
    lines = [
        "# INT8 accuracy",
        "",
        "Generated by `python benchmarks/int8_accuracy.py` (do not edit), "
        f"{machine['date']}, {machine['cpu']}. Each trained baseline exported in FP32 at "
        "128x256, calibrated on 256 images of the synthetic train split (stratified), "
        "quantized by `edgeseg quantize` for each target and scored on the whole val split. "
        "Drops are mIoU points against the FP32 artifact in ONNX Runtime. `mode` is how both "
        "engines ran the Q/DQ graph for the figures and the agreement gate: `kernels` = "
        "their fused INT8 kernels (what a CPU user gets), `reference` = the Q/DQ arithmetic "
        "as written (what TensorRT computes; full-range weights saturate the fused kernels "
        "of CPUs without VNNI). Agreement: the worse of 16 calibration images and the val "
        "split, in that mode; gates: >= 99.5% in the reference arithmetic, >= 98% in the "
        "kernels for the CPU targets. FP32 mIoU is each checkpoint's own, the reference for "
        "the drops (checkpoints trained on the machine named above; they can differ from "
        "baselines.md).",
        "",
        "| model | target | budget | weights | mode | FP32 mIoU | INT8 ORT | INT8 OV | "
        "drop ORT / OV | ORT-OV agree | float layers | lost most (points) |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- | --- |",
    ]
    for r in rows:
        budget = "-" if r["max_drop"] is None else f"{r['max_drop']:g}"
        if "refused" in r:
            lines.append(f"| {r['model']} | {r['target']} ({r['route']}) | {budget} | "
                         f"refused: {r['refused']} |||||||||")
            continue
        if r.get("budget"):
            budget += " met" if r["budget"]["budget_met"] else " NOT met"
        target = r["target"] + (" (NNCF IR)" if r.get("route") == "nncf" else "")
        if r.get("route") == "nncf":
            ort, drop_ort, agree = "-", "-", "n/a (IR)"
        else:
            ort = f"{r['miou']['onnxruntime']:.4f}"
            drop_ort = f"{r['drop_points']['onnxruntime']:+.2f}"
            agree = f"{100 * min(r['agreement_ort_ov'][r['mode']].values()):.3f}%"
        worst = _worst_classes(r, "openvino" if r.get("route") == "nncf" else "onnxruntime")
        lines.append(
            f"| {r['model']} | {target} | {budget} | {bits(r['weight_bits'])} | {r['mode']} "
            f"| {r['miou_fp32']:.4f} | {ort} | {r['miou']['openvino']:.4f} | {drop_ort} / "
            f"{r['drop_points']['openvino']:+.2f} | {agree} | "
            f"{', '.join(r['float_layers']) or 'none'} | {worst} |")
    budgets = [r for r in rows if r.get("budget")]
    if budgets:
        lines += ["", "## Accuracy budget (`--max-drop`)", ""]
        for r in budgets:
            b = r["budget"]
            steps = "; ".join(
                f"{len(s['float_layers'])} float: drop {s['drop_points']:.2f}"
                + (f" (+{s['added']}, alone {s['added_gain_points']:+.2f})" if "added" in s
                   else "") for s in b["steps"])
            lines.append(f"- {r['model']} ({r['target']}, budget {r['max_drop']:g} points, "
                         f"searched in {b['backend']} {b['mode']}): {steps}. Final drop "
                         f"{b['final_drop_points']:.2f} on the worse engine: "
                         f"{'met' if b['budget_met'] else 'NOT met'}.")
    lines += ["", f"Data: `{data}`. Reproduce: `edgeseg baseline` (checkpoints), then "
              "`python benchmarks/int8_accuracy.py --data DIR`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--data", default=str(DEFAULT_CACHE / "synth-128x256-n1200-seed0"))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--calib-images", type=int, default=256)
    p.add_argument("--budget", type=float, default=0.5)
    p.add_argument("--nncf-models", nargs="*", default=["bisenetv1"],
                   help="models that also get the NNCF route's row")
    p.add_argument("--merge", action="store_true",
                   help="keep other models' rows from an existing int8_accuracy.json")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    a = p.parse_args()
    run(a.models, a.data, a.cache, a.out, a.calib_images, a.budget, a.merge,
        tuple(a.nncf_models))


if __name__ == "__main__":
    main()
