"""edgeseg optimize's pick against the path a user takes without edgeseg, side by side in one
run per model: a uint8 HxWx3 frame to its full-resolution label map.

- PyTorch eager FP32: the trained module, host normalisation, torch argmax;
- plain FP32: `torch.onnx.export` of the same weights with its defaults, numpy normalisation,
  the engine with its default settings, numpy argmax over the logits;
- plain INT8: that graph through ONNX Runtime's `quantize_static` with its defaults (QDQ,
  U8 activations, S8 weights per tensor, MinMax) on the first 32 train images;
- both plain graphs in ONNX Runtime and in OpenVINO (default settings, so its CPU plugin's
  own inference precision: bf16 on CPUs that have it);
- edgeseg: `edgeseg optimize` at the same size, budget 0.5 mIoU points, its pick run by
  `Segmenter` as meta.json's runtime says.

mIoU of every path on the same val images, of a second scene set (seed 1) that optimize
never saw (it chose on the val split of the seed-0 set, whose train split calibrated). The
checkpoints are the trained baselines (`edgeseg baseline`, 128x256 synthetic scenes); the
scenes are rendered at the deployment size, so absolute mIoU is low and the differences
between paths are what counts. Writes benchmarks/vs_plain_export.{json,md} and each pick's
optimize report as benchmarks/vs_plain_export/<model>-optimize.md.

    python benchmarks/vs_plain_export.py [--models bisenetv1 bisenetv2 deeplabv3plus]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _results import save
from peer_export import plain_export

from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.bench.latency import interleaved
from edgeseg.bench.sysinfo import isa, system_profile
from edgeseg.checkpoint import model_from_checkpoint
from edgeseg.cli.common import parse_size
from edgeseg.data.datasets import open_dataset
from edgeseg.data.synthetic import write_dataset
from edgeseg.evaluate import evaluate_side_by_side
from edgeseg.pipeline.optimize import OptimizeConfig
from edgeseg.pipeline.optimize import run as optimize
from edgeseg.runtime.segmenter import Segmenter

EAGER, PICK = "PyTorch eager FP32", "edgeseg optimize pick"


def dataset_at(size, n: int, seed: int = 0) -> Path:
    root = DEFAULT_CACHE / f"synth-{size[0]}x{size[1]}-n{n}-seed{seed}"
    if not (root / "classes.json").is_file():
        write_dataset(root, n, size, seed=seed, progress=False)
    return root


def plain_int8(fp32: Path, out: Path, images: list[np.ndarray], normalize) -> None:
    """ONNX Runtime's quantize_static with every default, fed the images as a user would."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    name = onnx.load(str(fp32)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{name: normalize(im)} for im in images])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(fp32), str(out), Reader())


def plain_runner(engine: str, path: Path, threads: int):
    """The engine as a user opens it: its defaults, only the thread count set."""
    if engine == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {name: x})[0]
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    return lambda x: next(iter(request.infer({0: x}).values()))


def paths_for(model: str, size, data: Path, work: Path, threads: int, out: Path,
              log) -> tuple[dict, dict]:
    import torch

    ckpt = DEFAULT_CACHE / "baselines" / f"{model}-128x256.pt"
    if not ckpt.is_file():
        raise SystemExit(f"no trained checkpoint {ckpt}: run `edgeseg baseline` first")
    net, _, pre = model_from_checkpoint(ckpt)
    mean = np.asarray(pre.mean, np.float32)
    std = np.asarray(pre.std, np.float32)

    def normalize(im: np.ndarray) -> np.ndarray:  # a user's own numpy preprocessing
        return ((im.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None].copy()

    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / f"{model}-plain-fp32.onnx"
    int8 = work / f"{model}-plain-int8.onnx"
    if not fp32.is_file():
        plain_export(ckpt, size, fp32)
    if not int8.is_file():
        train = open_dataset(data, "train")
        plain_int8(fp32, int8, [train[i][0] for i in range(32)], normalize)
    log(f"{model}: edgeseg optimize at {size[0]}x{size[1]}")
    res = optimize(OptimizeConfig(
        source=str(ckpt), out=str(work / f"{model}-pick"), val=str(data), size=tuple(size),
        max_drop=0.5, finalists=1, val_limit=8, rounds=10, warmup=2, threads=threads,
        force=True), log=log)
    reports = out / "vs_plain_export"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{model}-optimize.md").write_text(
        (work / f"{model}-pick" / "optimize" / "report.md").read_text())
    torch.set_num_threads(threads)

    def eager(im):
        with torch.inference_mode():
            return net(torch.from_numpy(normalize(im))).argmax(1)[0].numpy().astype(np.uint8)

    paths, failed = {EAGER: ("torch", eager)}, {}
    for engine in ("onnxruntime", "openvino"):
        for label, graph in (("plain FP32", fp32), ("plain INT8 (quantize_static)", int8)):
            try:
                run = plain_runner(engine, graph, threads)
            except RuntimeError as e:  # an engine that cannot compile the graph
                failed[f"{label}, {engine}"] = (engine, " ".join(str(e).split())[-160:])
                continue
            paths[f"{label}, {engine}"] = (
                engine, lambda im, run=run: run(normalize(im))[0].argmax(0).astype(np.uint8))
    seg = Segmenter(work / f"{model}-pick", threads=threads)
    paths[PICK] = (seg.backend, seg.predict)
    return paths, {"pick": res.winner.name, "pick_engine": seg.backend, "failed": failed,
                   "pick_hint": seg.inference_precision, "segmenter": seg,
                   "throughput": res.throughput, "batching": res.batching}


def measure(model, size, data, held_out, work, threads, rounds, warmup, val_limit, out,
            log) -> list[dict]:
    paths, info = paths_for(model, size, data, work, threads, out, log)
    try:
        val = open_dataset(held_out, "val")
        image = val[0][0]
        assert image.shape[:2] == tuple(size)
        log(f"{model}: timing {len(paths)} paths, {rounds} interleaved rounds")
        stats = interleaved({k: (lambda f=f: f(image)) for k, (_, f) in paths.items()},
                            warmup=warmup, rounds=rounds, rotate=True)
        log(f"{model}: scoring on {min(val_limit, len(val))} held-out val images")
        metrics, _ = evaluate_side_by_side({k: f for k, (_, f) in paths.items()}, val,
                                           limit=val_limit)
    finally:
        info["segmenter"].close()
    eager = stats[EAGER].median_ms
    same = stats.get(f"plain INT8 (quantize_static), {info['pick_engine']}")
    plain_same = same.median_ms if same else None
    ort = stats.get("plain INT8 (quantize_static), onnxruntime")
    plain_ort = ort.median_ms if ort else float("nan")
    fps = {(t["artifact"], t["batch"], t["streams"]): t.get("fps") for t in info["throughput"]}
    best = (info["batching"] or {}).get("best_batch")
    twin = "dynamic-batch twin"
    rows = [{"model": model, "path": k, "engine": engine, "failed": why}
            for k, (engine, why) in info["failed"].items()]
    for k, (engine, _) in paths.items():
        s = stats[k]
        rows.append({"model": model, "path": k if k != PICK else f"{PICK}: {info['pick']}",
                     "fps_1_caller": fps.get(("pick", 1, 1)) if k == PICK else None,
                     "fps_2_callers": fps.get(("pick", 1, 2)) if k == PICK else None,
                     "best_batch": best if k == PICK else None,
                     "fps_best_batch_1_caller": fps.get((twin, best, 1)) if k == PICK else None,
                     "fps_best_batch_2_callers": fps.get((twin, best, 2)) if k == PICK else None,
                     "engine": engine, "p50_ms": round(s.median_ms, 2),
                     "p99_ms": round(s.p99_ms, 2), "miou": round(metrics[k].miou, 4),
                     "miou_vs_eager_points": round(100 * (metrics[k].miou
                                                          - metrics[EAGER].miou), 2),
                     "x_eager": round(eager / s.median_ms, 2),
                     "x_plain_int8_same_engine": (round(plain_same / s.median_ms, 2)
                                                  if plain_same else None),
                     "x_plain_int8_onnxruntime": round(plain_ort / s.median_ms, 2)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["bisenetv1", "bisenetv2", "deeplabv3plus"])
    p.add_argument("--size", type=parse_size, default=(512, 1024))
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--val-limit", type=int, default=16)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--work", type=Path, default=DEFAULT_CACHE / "vs-plain")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    p.add_argument("--render", action="store_true",
                   help="rewrite the Markdown from the JSON in --out, measuring nothing")
    a = p.parse_args()
    if a.render:
        render(a.out, json.loads((a.out / "vs_plain_export.json").read_text()))
        return
    log = lambda s: print(s, flush=True)  # noqa: E731
    data, held_out = dataset_at(a.size, 64), dataset_at(a.size, 80, seed=1)
    rows = []
    for model in a.models:
        rows += measure(model, a.size, data, held_out, a.work, a.threads, a.rounds, a.warmup,
                        a.val_limit, a.out, log)
    prof = system_profile(threads=a.threads)
    render(a.out, {"date": time.strftime("%Y-%m-%d", time.gmtime()), "size": list(a.size),
                   "threads": a.threads, "rounds": a.rounds, "warmup": a.warmup,
                   "val_limit": a.val_limit, "isa": isa(prof["cpu"]["flags"]),
                   "cpu_flags": prof["cpu"]["flags"],
                   "versions": prof["versions"], "git": prof["git"], "rows": rows})


def same_engine_plain(rows: list[dict], r: dict, precision: str) -> float | None:
    """The plain path of `precision` in r's engine, as a multiple of r's p50."""
    label = {"fp32": "plain FP32", "int8": "plain INT8 (quantize_static)"}[precision]
    base = next((x for x in rows if x["model"] == r["model"] and "p50_ms" in x
                 and x["path"] == f"{label}, {r['engine']}"), None)
    return None if base is None else base["p50_ms"] / r["p50_ms"]


def _fps(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def render(out: Path, data: dict) -> None:
    """benchmarks/vs_plain_export.{json,md} from the measured rows (also `--render`: the
    table again from the JSON, without measuring)."""
    v = data["versions"]
    intro = (f"{data['date']}, {data['size'][0]}x{data['size'][1]}, batch 1, {data['threads']} "
             f"threads, ISA: {data['isa']}; onnxruntime {v.get('onnxruntime')}, openvino "
             f"{v.get('openvino')}, torch {v.get('torch')}. A uint8 frame to its "
             f"full-resolution label map, {data['warmup']} warm-up runs each, then "
             f"{data['rounds']} interleaved rounds of every path of a model (each round starting "
             f"one path later); mIoU on {data['val_limit']} held-out val scenes rendered at "
             "this size, which optimize never saw (models trained at 128x256: compare the "
             "paths, not the absolute figure). fps: the pick's frames/s with 1 and 2 callers "
             "at batch 1, and at the best of batches 1/2/4/8 on its dynamic-batch twin "
             "(optimize's throughput step; 2 callers are timed only where the best batch is "
             "above 1). x plain: the plain path "
             "(torch.onnx.export [+ quantize_static defaults] + numpy argmax) as a multiple "
             "of the row's p50, in the row's engine and in ONNX Runtime; OpenVINO cannot "
             "compile quantize_static's default output here, so in OpenVINO the plain path "
             "that runs is FP32, with OpenVINO's default settings (bf16 inference precision "
             "on a CPU with AVX-512 BF16/AMX, f32 otherwise).")

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}x"

    def cells(r: dict) -> list[str]:
        if "failed" in r:
            return [r["model"], r["path"], r["engine"], "fails to compile: " + r["failed"],
                    *["-"] * 12]
        return [r["model"], r["path"], r["engine"], f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                f"{r['miou']:.4f}", f"{r['miou_vs_eager_points']:+.2f}", f"{r['x_eager']:.2f}x",
                fmt(same_engine_plain(data["rows"], r, "fp32")),
                fmt(same_engine_plain(data["rows"], r, "int8")),
                f"{r['x_plain_int8_onnxruntime']:.2f}x",
                *[_fps(r.get(k)) for k in ("fps_1_caller", "fps_2_callers")],
                "-" if r.get("best_batch") is None else str(r["best_batch"]),
                *[_fps(r.get(k)) for k in ("fps_best_batch_1_caller",
                                           "fps_best_batch_2_callers")]]

    header = ["model", "path", "engine", "p50 ms", "p99 ms", "mIoU", "vs eager (points)",
              "x eager", "x plain FP32 (same engine)", "x plain INT8 (same engine)",
              "x plain INT8 (ORT)", "fps 1 caller", "fps 2 callers", "best batch",
              "fps best batch, 1 caller", "fps best batch, 2 callers"]
    save(out, "vs_plain_export", {k: x for k, x in data.items() if k not in ("cpu", "python")},
         "edgeseg optimize vs the plain export path", intro, header,
         [cells(r) for r in data["rows"]])

if __name__ == "__main__":
    main()
