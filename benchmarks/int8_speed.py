"""INT8 vs FP32 latency on this CPU, side by side in one run: one model at a deployment size,
its FP32 artifact and its INT8 artifacts for each target, in ONNX Runtime and OpenVINO;
writes benchmarks/int8_speed.{json,md}.

    python benchmarks/int8_speed.py [--model bisenetv1] [--size 512x1024] [--rounds 20]

Runs are interleaved (one inference of each configuration per round) so that the machine's
load drifts equally over all of them. Uses the trained baseline checkpoint when cached,
random weights otherwise (speed does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner
from edgeseg.baseline import DEFAULT_CACHE, cpu_name
from edgeseg.bench.latency import summarize
from edgeseg.bench.sysinfo import cpu_info
from edgeseg.cli.common import parse_size
from edgeseg.export.artifact import read_meta
from edgeseg.export.exporter import ExportConfig, export
from edgeseg.quant.calib import MIN_IMAGES, build
from edgeseg.quant.config import QuantConfig
from edgeseg.quant.int8 import quantize


def run(model: str, size, data: str, cache: Path, out_dir: Path, rounds: int, warmup: int,
        threads: int) -> dict:
    ckpt = cache / "baselines" / f"{model}-128x256.pt"
    trained = ckpt.is_file()
    with tempfile.TemporaryDirectory(prefix="edgeseg-speed-") as tmp:
        work = Path(tmp)

        def log(s):
            print(s, flush=True)

        fp32 = work / "fp32"
        export(ExportConfig(out=str(fp32), checkpoint=str(ckpt) if trained else None,
                            model=None if trained else model, size=size,
                            formats=("onnx", "openvino"), parity_inputs=1), log=log)
        calib = build(work / "calib", size=size, data=data, num=MIN_IMAGES, progress=False,
                      log=log)
        arts = {}
        for target in ("onnxruntime", "openvino", "tensorrt"):
            arts[target] = work / f"int8-{target}"
            quantize(QuantConfig(artifact=str(fp32), calib=str(calib.root),
                                 out=str(arts[target]), target=target, threads=threads,
                                 range_cache=str(work / "ranges"),
                                 # Speed only: the accuracy benchmark judges accuracy.
                                 min_fp32_agreement=0.0),
                     log=log, progress=False)
        configs = {
            "onnxruntime fp32": ("onnxruntime", fp32 / "model.onnx"),
            "onnxruntime int8 (onnxruntime target: u8 activations)":
                ("onnxruntime", arts["onnxruntime"] / "model.onnx"),
            "onnxruntime int8 (tensorrt target: s8 activations)":
                ("onnxruntime", arts["tensorrt"] / "model.onnx"),
            "openvino fp32 (f32 precision)": ("openvino", fp32 / "model.xml"),
            "openvino int8 (openvino target)": ("openvino", arts["openvino"] / "model.xml"),
            "openvino int8 (onnxruntime target)": ("openvino", arts["onnxruntime"] / "model.xml"),
        }
        meta = read_meta(fp32)
        x = np.random.default_rng(0).normal(size=meta["input"]["shape"]).astype(np.float32)
        name = meta["input"]["name"]
        runners = {k: get_runner(b, p, threads=threads) for k, (b, p) in configs.items()}
        for r in runners.values():
            r.__enter__()
        times: dict[str, list[float]] = {k: [] for k in runners}
        try:
            for r in runners.values():
                for _ in range(warmup):
                    r.infer({name: x})
            for _ in range(rounds):
                for k, r in runners.items():
                    t0 = time.perf_counter()
                    r.infer({name: x})
                    times[k].append((time.perf_counter() - t0) * 1000.0)
        finally:
            for r in runners.values():
                r.__exit__(None, None, None)
    stats = {k: summarize(v).as_dict() for k, v in times.items()}
    result = {
        "model": model, "weights": "trained" if trained else "random",
        "size": f"{size[0]}x{size[1]}", "threads": threads, "rounds": rounds,
        "warmup": warmup, "cpu": cpu_name(), "cpu_flags": cpu_info()["flags"],
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "stats": stats,
        "speedup": {
            "onnxruntime": stats["onnxruntime fp32"]["median_ms"]
            / stats["onnxruntime int8 (onnxruntime target: u8 activations)"]["median_ms"],
            "openvino": stats["openvino fp32 (f32 precision)"]["median_ms"]
            / stats["openvino int8 (openvino target)"]["median_ms"],
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "int8_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "int8_speed.md").write_text(markdown(result))
    print(markdown(result))
    return result


def markdown(r: dict) -> str:
    lines = [
        "# INT8 vs FP32 latency",
        "",
        f"Generated by `python benchmarks/int8_speed.py` (do not edit), {r['date']}: "
        f"{r['model']} ({r['weights']} weights) at {r['size']}, batch 1, {r['threads']} "
        f"threads, on {r['cpu']} (flags: {' '.join(r['cpu_flags']) or 'unknown'}). "
        f"{r['warmup']} warm-up runs each, then {r['rounds']} rounds of one inference per "
        "configuration, interleaved; compute only (the input is already preprocessed).",
        "",
        "| configuration | median ms | p90 ms | p99 ms | min ms | FPS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k, s in r["stats"].items():
        lines.append(f"| {k} | {s['median_ms']:.1f} | {s['p90_ms']:.1f} | {s['p99_ms']:.1f} | "
                     f"{s['min_ms']:.1f} | {s['fps']:.2f} |")
    lines += ["", f"INT8 speed-up over FP32 (medians): ONNX Runtime "
              f"{r['speedup']['onnxruntime']:.2f}x (onnxruntime target), OpenVINO "
              f"{r['speedup']['openvino']:.2f}x (openvino target)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bisenetv1")
    p.add_argument("--size", type=parse_size, default=(512, 1024))
    p.add_argument("--data", default=str(DEFAULT_CACHE / "synth-128x256-n1200-seed0"))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    a = p.parse_args()
    run(a.model, a.size, a.data, a.cache, a.out, a.rounds, a.warmup, a.threads)


if __name__ == "__main__":
    main()
