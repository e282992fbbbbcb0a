"""`edgeseg report`: result files from any number of devices merged into one Markdown table, a
CSV, and PNG plots (latency vs mIoU per device with its Pareto front; per-phase bars).

Speed-up is against the PyTorch eager FP32 row (`--backend torch`) of the same device, model,
input size and batch; the mIoU delta is against the FP32 row of the same device, model and
size (same backend when there is one). A row without such a reference shows "-", never a
number from elsewhere.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from edgeseg.bench.results import collect
from edgeseg.bench.sysinfo import device_name
from edgeseg.core.errors import UsageError

COLUMNS = ["device", "model", "size", "precision", "backend", "batch", "p50 ms", "p99 ms",
           "p99/p50", "FPS", "e2e p50 ms", "speed-up vs torch FP32", "mIoU", "ΔmIoU vs FP32"]
PHASE_COLORS = {"preprocess": "#8fb8de", "copy_in": "#f4a261", "compute": "#2a9d8f",
                "copy_out": "#e9c46a", "postprocess": "#b5838d"}


def _size(r: dict) -> str:
    ran = r["config"].get("size")  # the size it ran at (a dynamic-size graph's choice)
    if ran:
        return f"{ran[0]}x{ran[1]}"
    shape = r["artifact"].get("input_shape") or []
    if len(shape) != 4:
        return "?"
    h, w = (shape[1], shape[2]) if shape[-1] == 3 else (shape[2], shape[3])
    return f"{h}x{w}"


def _precision(r: dict) -> str:
    a = r["artifact"]
    return a["precision"] + (f" ({a['target']})" if a.get("target") else "")


def rows(results: list[dict]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        out.append({"device": device_name(r["system"]), "model": r["artifact"]["model"],
                    "size": _size(r), "precision": _precision(r),
                    "raw_precision": r["artifact"]["precision"],
                    "backend": r["backend"]["name"], "batch": r["config"]["batch"],
                    "p50": r["latency_ms"]["median_ms"], "p99": r["latency_ms"]["p99_ms"],
                    "fps": r["fps"], "e2e": r["end_to_end_ms"]["median_ms"],
                    "miou": (r.get("accuracy") or {}).get("miou"),
                    "phases": {k: v["median_ms"] for k, v in r["phases_ms"].items()},
                    "file": r.get("_file")})
    for row in out:
        key = (row["device"], row["model"], row["size"])
        torch_rows = [o for o in out if (o["device"], o["model"], o["size"]) == key
                      and o["backend"] == "torch" and o["batch"] == row["batch"]]
        row["speedup"] = torch_rows[0]["p50"] / row["p50"] if torch_rows else None
        fp32 = [o for o in out if (o["device"], o["model"], o["size"]) == key
                and o["raw_precision"] == "fp32" and o["miou"] is not None]
        fp32.sort(key=lambda o: (o["backend"] != row["backend"], o["backend"] == "torch"))
        row["dmiou"] = (row["miou"] - fp32[0]["miou"]) * 100 \
            if fp32 and row["miou"] is not None else None
    out.sort(key=lambda o: (o["device"], o["model"], o["size"], o["batch"], o["p50"]))
    return out


def _cells(row: dict) -> list[str]:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    return [row["device"], row["model"], row["size"], row["precision"], row["backend"],
            str(row["batch"]), f(row["p50"], ".2f"), f(row["p99"], ".2f"),
            f(row["p99"] / row["p50"], ".2f"), f(row["fps"], ".1f"), f(row["e2e"], ".2f"),
            "-" if row["speedup"] is None else f"{row['speedup']:.2f}x", f(row["miou"], ".4f"),
            "-" if row["dmiou"] is None else f"{row['dmiou']:+.2f} pt"]


def markdown(table: list[dict], problems: list[str]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "| " + " | ".join("---:" if i >= 5 else "---" for i in range(len(COLUMNS))) + " |"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in table]
    text = "\n".join(lines) + "\n"
    text += ("\np50/p99: compute latency of one batch (median, 99th percentile); e2e: decoded "
             "image to label map at the image's size. Speed-up: against the PyTorch eager FP32 "
             "row of the same device, model, size and batch. ΔmIoU: mIoU points against the "
             "FP32 row of the same device, model and size.\n")
    if problems:
        text += "\nNot included (could not be read):\n\n" + "".join(f"- {p}\n" for p in problems)
    return text


def csv_text(table: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["device", "model", "size", "precision", "backend", "batch", "p50_ms", "p99_ms",
                "fps", "e2e_p50_ms", "speedup_vs_torch_fp32", "miou", "dmiou_pt", "file"])
    for r in table:
        w.writerow([r["device"], r["model"], r["size"], r["precision"], r["backend"], r["batch"],
                    f"{r['p50']:.4f}", f"{r['p99']:.4f}", f"{r['fps']:.3f}", f"{r['e2e']:.4f}",
                    "" if r["speedup"] is None else f"{r['speedup']:.4f}",
                    "" if r["miou"] is None else f"{r['miou']:.4f}",
                    "" if r["dmiou"] is None else f"{r['dmiou']:.3f}", r["file"] or ""])
    return buf.getvalue()


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both latency (lower) and mIoU (higher), by
    latency."""
    front, best = [], float("-inf")
    for lat, miou in sorted(points, key=lambda p: (p[0], -p[1])):
        if miou > best:
            front.append((lat, miou))
            best = miou
    return front


def _label(r: dict) -> str:
    return f"{r['model']} {r['precision']} {r['backend']}"


def plot_latency_vs_miou(table: list[dict], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in table if r["miou"] is not None]
    if not scored:
        return False
    devices = sorted({r["device"] for r in scored})
    fig, axes = plt.subplots(1, len(devices), figsize=(6.5 * len(devices), 4.8), squeeze=False)
    models = sorted({r["model"] for r in scored})
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    markers = {"fp32": "o", "fp16": "s", "int8": "^"}
    backend_fill = {"torch": "none"}  # the eager reference: hollow
    for ax, dev in zip(axes[0], devices):
        pts = [r for r in scored if r["device"] == dev]
        for r in pts:
            color = colors[r["model"]]
            ax.scatter(r["p50"], r["miou"], s=42, marker=markers.get(r["raw_precision"], "x"),
                       edgecolors=color,
                       facecolors=backend_fill.get(r["backend"], color), linewidths=1.2)
        front = pareto([(r["p50"], r["miou"]) for r in pts])
        ax.plot(*zip(*front), "--", color="grey", linewidth=1, label="Pareto front")
        on_front = {p for p in front}
        for r in pts:  # name only the Pareto points; the legend keys the rest
            if (r["p50"], r["miou"]) in on_front:
                ax.annotate(f"{r['precision']} {r['backend']}", (r["p50"], r["miou"]),
                            fontsize=7, xytext=(4, -10), textcoords="offset points")
        for m in models:
            ax.scatter([], [], color=colors[m], marker="o", label=m)
        for prec, mk in markers.items():
            ax.scatter([], [], color="black", marker=mk, label=prec)
        ax.scatter([], [], facecolors="none", edgecolors="black", label="torch eager (hollow)")
        ax.set_xscale("log")
        ax.set_xlabel("compute latency p50 (ms, log scale)")
        ax.set_ylabel("val mIoU")
        ax.set_title(dev, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_phases(table: list[dict], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not table:
        return False
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(table) + 1.5))
    labels = [f"{r['device']}: {_label(r)} b{r['batch']}" for r in table]
    for phase, color in PHASE_COLORS.items():
        left = [sum(r["phases"].get(p, 0.0) for p in list(PHASE_COLORS)[
            :list(PHASE_COLORS).index(phase)]) for r in table]
        widths = [r["phases"].get(phase, 0.0) for r in table]
        if any(widths):
            ax.barh(labels, widths, left=left, color=color, label=phase)
    ax.invert_yaxis()
    ax.set_xlabel("median ms per run, by phase")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=5, frameon=False)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _collect(paths: list[str | Path]) -> tuple[list[dict], list[str]]:
    results, problems = collect(paths)
    if not results:
        raise UsageError("no usable result files:\n" + "\n".join(problems or
                                                                 ["(no paths given)"]))
    return results, problems


def table_only(paths: list[str | Path]) -> tuple[str, list[str]]:
    """The Markdown table (what the README embeds) and the files that could not be used."""
    results, problems = _collect(paths)
    return markdown(rows(results), problems), problems


def report(paths: list[str | Path], out: str | Path) -> dict[str, Any]:
    """Write report.md, report.csv and the plots into `out`; returns what was written and
    what could not be read."""
    results, problems = _collect(paths)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = rows(results)
    written = [out / "report.md", out / "report.csv"]
    (out / "report.md").write_text(markdown(table, problems))
    (out / "report.csv").write_text(csv_text(table))
    if plot_latency_vs_miou(table, out / "latency_vs_miou.png"):
        written.append(out / "latency_vs_miou.png")
    if plot_phases(table, out / "phases.png"):
        written.append(out / "phases.png")
    return {"rows": table, "problems": problems, "written": written}
