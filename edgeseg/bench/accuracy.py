"""Accuracy report: artifacts of any precision side by side on one validation split, in every
engine that can run them here, against the FP32 reference (`edgeseg compare --val`).

One pass over the images runs every (artifact, engine) pair, so all rows see the same
pixels; agreement is the share of labelled pixels whose class matches the reference row's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from edgeseg.backends import is_available, model_file
from edgeseg.core.artifact import ArtifactError, read_meta
from edgeseg.core.capabilities import CPU_ENGINES
from edgeseg.core.errors import EngineUnavailable
from edgeseg.quant.config import check_val
from edgeseg.quant.engines import score


def engines_for(meta: dict) -> list[tuple[str, str]]:
    """(engine, file) pairs an artifact can run in here."""

    out = []
    for name in CPU_ENGINES:
        if is_available(name):
            with contextlib.suppress(ArtifactError):  # no file this engine runs
                out.append((name, model_file(meta, name)))
    return out


def report(artifacts: list[str], val: str, *, limit: int | None = None,
           threads: int | None = None, progress: bool = True,
           log: Callable[[str], None] = print) -> dict:

    metas = [read_meta(a) for a in artifacts]
    first = metas[0]
    for a, m in zip(artifacts, metas):
        if m["classes"]["names"] != first["classes"]["names"]:
            raise ArtifactError(f"{a}: its classes differ from {artifacts[0]}'s; compare "
                                "artifacts of one model")
        if (m["input"]["size"], m["input"]["resize"]) != (first["input"]["size"],
                                                          first["input"]["resize"]):
            raise ArtifactError(f"{a}: input {m['input']['size']} ({m['input']['resize']}) "
                                f"differs from {artifacts[0]}'s; compare one deployment size")
    dataset = check_val(val, first)
    fp32 = [i for i, m in enumerate(metas) if m["precision"] == "fp32"]
    models, rows = {}, []
    for i, (a, m) in enumerate(zip(artifacts, metas)):
        engines = engines_for(m)
        if not engines:
            log(f"{a}: no engine here can run it (skipped)")
        for engine, file in engines:
            label = f"{i}:{engine}"
            models[label] = (engine, Path(a) / file, {})
            rows.append({"artifact": str(a), "precision": m["precision"], "engine": engine,
                         "file": file, "label": label,
                         "route": (m.get("calibration") or {}).get("route"),
                         "target": (m.get("calibration") or {}).get("target")})
    if not models:
        raise EngineUnavailable("none of the artifacts can run here (install "
                                f"{' or '.join(CPU_ENGINES)})")
    # The reference goes first: the FP32 artifact in ONNX Runtime when there is one.
    ref_label = next((r["label"] for r in rows if fp32 and r["label"].startswith(f"{fp32[0]}:")
                      and r["engine"] == CPU_ENGINES[0]), rows[0]["label"])
    order = [ref_label] + [k for k in models if k != ref_label]
    metrics, agree = score({k: models[k] for k in order}, first, dataset, limit=limit,
                           threads=threads, progress=progress)
    ref = metrics[ref_label]
    for r in rows:
        m = metrics[r["label"]]
        r.update(miou=m.miou, pixel_accuracy=m.pixel_accuracy, per_class_iou=m.per_class_iou,
                 delta_points=100 * (m.miou - ref.miou),
                 agreement=1.0 if r["label"] == ref_label
                 else agree[f"{ref_label}|{r['label']}"])
        lost = sorted(((ref.per_class_iou[c] or 0) - (v or 0), c)
                      for c, v in m.per_class_iou.items())[::-1]
        r["lost_most"] = [{"class": c, "points": 100 * d} for d, c in lost[:3] if d > 0]
    reference = next(r for r in rows if r["label"] == ref_label)
    return {"dataset": str(Path(val).resolve()), "split": "val", "images": ref.images,
            "reference": {"artifact": reference["artifact"], "engine": reference["engine"]},
            "classes": list(first["classes"]["names"]), "rows": rows}


def markdown(rep: dict) -> str:
    lines = [f"Accuracy on {rep['images']} val images of `{rep['dataset']}`; reference: "
             f"{rep['reference']['artifact']} in {rep['reference']['engine']}.", "",
             "| artifact | precision | engine | mIoU | vs reference (points) | agreement | "
             "lost most |", "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for r in rep["rows"]:
        lost = ", ".join(f"{x['class']} {x['points']:.1f}" for x in r["lost_most"]) or "-"
        lines.append(f"| {Path(r['artifact']).name} | {r['precision']} | {r['engine']} | "
                     f"{r['miou']:.4f} | {r['delta_points']:+.2f} | "
                     f"{100 * r['agreement']:.2f}% | {lost} |")
    lines += ["", "| artifact | engine | " + " | ".join(rep["classes"]) + " |",
              "| --- | --- | " + " | ".join("---:" for _ in rep["classes"]) + " |"]
    for r in rep["rows"]:
        cells = " | ".join("-" if r["per_class_iou"][c] is None
                           else f"{r['per_class_iou'][c]:.3f}" for c in rep["classes"])
        lines.append(f"| {Path(r['artifact']).name} | {r['engine']} | {cells} |")
    return "\n".join(lines) + "\n"
