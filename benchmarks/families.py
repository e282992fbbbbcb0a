"""Every family side by side at 512x1024, to pick a model for a latency budget: parameters
and MACs (counted now), FP32 and INT8 latency in ONNX Runtime and OpenVINO (from
benchmarks/int8_speed.json), FP32 and INT8 mIoU (benchmarks/baselines.json and
benchmarks/int8_accuracy.json: the trained baselines at their training size, 128x256, on the
synthetic val split). It measures nothing itself: a dash is a figure not measured yet, and
the row says which benchmark to run for it.

    python benchmarks/families.py    # rewrites benchmarks/families.{json,md}
"""

from __future__ import annotations

import json
from pathlib import Path

from _results import save

from edgeseg.baseline import RECIPES
from edgeseg.bench.sysinfo import isa
from edgeseg.models.catalog import describe

HERE = Path(__file__).resolve().parent
# int8_speed.json's configurations: the INT8 graph each engine runs fastest here (its own
# target's U8 graph for ONNX Runtime; OpenVINO's target for OpenVINO)
LATENCY = {"ort fp32": "onnxruntime fp32",
           "ort int8": "onnxruntime int8 (onnxruntime target: u8 activations)",
           "ov fp32": "openvino fp32 (f32 precision)",
           "ov int8": "openvino int8 (openvino target)"}
INT8_TARGETS = ("onnxruntime", "openvino")


def _load(name: str) -> list[dict]:
    path = HERE / f"{name}.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else data.get("rows", [])


def rows() -> list[dict]:
    speed = {r["model"]: r for r in _load("int8_speed")}
    base = {r["model"]: r for r in _load("baselines")}
    acc = {(r["model"], r["target"]): r for r in _load("int8_accuracy")
           if r.get("max_drop") is None and r.get("route", "qdq") == "qdq" and "miou" in r}
    out = []
    for recipe, spec in RECIPES.items():
        model = spec.get("model", recipe)
        variants = describe((512, 1024), 19, [model])
        want = spec.get("options", {})  # the recipe's variant, else the model's default one
        c = next((r for r in variants if want and want.items() <= r["options"].items()),
                 variants[0])
        s = speed.get(recipe, {}).get("stats", {})
        missing = [name for name, have in (("int8_speed", bool(s)), ("baselines", recipe in base),
                                           ("int8_accuracy", any((recipe, t) in acc
                                                                 for t in INT8_TARGETS)))
                   if not have]
        out.append({
            "model": recipe, "params_m": c["params_m"], "gmacs": c["gmacs"],
            **{k: round(s[v]["median_ms"], 1) if v in s else None for k, v in LATENCY.items()},
            # FP32 on the same held-out images as INT8 (int8_accuracy's), else the baseline's
            "miou_fp32": next((round(acc[(recipe, t)]["miou_fp32"], 4) for t in INT8_TARGETS
                               if (recipe, t) in acc),
                              round(base[recipe]["miou"], 4) if recipe in base else None),
            **{f"miou_int8_{t}": round(acc[(recipe, t)]["miou"], 4) if (recipe, t) in acc
               else None for t in INT8_TARGETS},
            "not_measured_yet": missing})
    return out


def main() -> None:
    table = rows()

    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    header = ["model", "params (M)", "GMACs", "ORT FP32 ms", "ORT INT8 ms", "OpenVINO FP32 ms",
              "OpenVINO INT8 ms", "mIoU FP32", "mIoU INT8 (ORT target)",
              "mIoU INT8 (OpenVINO target)", "missing: run"]
    cells = [[r["model"], f(r["params_m"], ".2f"), f(r["gmacs"], ".1f"),
              *[f(r[k], ".1f") for k in LATENCY], f(r["miou_fp32"], ".4f"),
              *[f(r[f"miou_int8_{t}"], ".4f") for t in INT8_TARGETS],
              ", ".join(f"benchmarks/{m}.py" if m != "baselines" else "edgeseg baseline"
                        for m in r["not_measured_yet"]) or "-"] for r in table]
    flags = next((r["cpu_flags"] for r in _load("int8_speed")), None)
    host = f"ISA {isa(flags)}" if flags else "no latency measured yet"
    intro = ("Every family at 512x1024 (params and MACs with 19 classes; latency: compute only, "
             "batch 1, 2 threads, median of interleaved rounds, from benchmarks/int8_speed.md; "
             f"{host}), and its accuracy (the trained baselines at "
             "128x256, FP32 and INT8 on the held-out val images of benchmarks/int8_accuracy.md, "
             "INT8 by `edgeseg quantize` with default settings; a model without INT8 rows "
             "shows its baseline's mIoU over the whole val split, benchmarks/baselines.md). "
             "Rendered from those files: it measures nothing itself.")
    save(HERE, "families", {"rows": table}, "All families side by side", intro, header, cells)


if __name__ == "__main__":
    main()
