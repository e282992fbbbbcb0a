"""What a dynamic height/width costs: one `--dynamic size` graph against graphs exported at
each fixed size, timed side by side in ONNX Runtime and OpenVINO; writes
benchmarks/dynamic_size.{json,md}.

    python benchmarks/dynamic_size.py [--model bisenetv1] [--range 256x512:1024x2048]
                                      [--nominal 512x1024] [--sizes ...] [--seconds 5]

Every size gets a static FP32 export of the same weights (random, seeded: speed does not
depend on the values) and the dynamic graph run at that size (`edgeseg bench --size`),
alternating static and dynamic per engine so that the machine's drift hits both. Figures are
the graph's compute (median ms, `latency_ms` of `edgeseg bench`). `first call`: the dynamic
graph's first run at a new size, which in OpenVINO includes compiling for that shape.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import save

from edgeseg.bench.run import BenchConfig, bench
from edgeseg.cli.common import parse_size, parse_size_range
from edgeseg.core.host import isa
from edgeseg.export.exporter import ExportConfig, export
from edgeseg.runtime import Segmenter

HERE = Path(__file__).resolve().parent
ENGINES = ("onnxruntime", "openvino")


def exported(work: Path, model: str, size, **kw) -> Path:
    tag = "dynamic" if kw.get("dynamic") else f"{size[0]}x{size[1]}"
    out = work / tag
    export(ExportConfig(out=str(out), model=model, size=size, num_classes=19,
                        formats=("onnx", "openvino"), parity_backends=("onnxruntime",),
                        parity_inputs=1, **kw), log=lambda m: None)
    return out


def compute_ms(art: Path, engine: str, seconds: float, threads: int, size=None) -> float:
    r = bench(BenchConfig(artifact=str(art), backend=engine, seconds=seconds, warmup=3,
                          threads=threads, size=size), log=lambda m: None, progress=False)
    return r["latency_ms"]["median_ms"]


def first_call_ms(art: Path, engine: str, size, threads: int) -> float:
    """The dynamic graph's first run at `size` in a fresh Segmenter (after one other size)."""
    with Segmenter(art, backend=engine, threads=threads) as seg:
        x = seg.pipeline.prepare(np.zeros((16, 16, 3), np.uint8))  # another size first
        seg._run(x)
        image = np.zeros((*size, 3), np.uint8)
        x = seg.pipeline.prepare(image)
        t0 = time.perf_counter()
        seg._run(x)
        return 1e3 * (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bisenetv1")
    p.add_argument("--range", type=parse_size_range, default=((256, 512), (1024, 2048)))
    p.add_argument("--nominal", type=parse_size, default=(512, 1024))
    p.add_argument("--sizes", type=parse_size, nargs="+",
                   default=[(256, 512), (512, 1024), (600, 1000), (1024, 2048)])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", type=Path, default=HERE)
    args = p.parse_args()
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="edgeseg-dynsize-") as tmp:
        work = Path(tmp)
        dyn = exported(work, args.model, args.nominal, dynamic="size", size_range=args.range)
        for size in args.sizes:
            static = exported(work, args.model, size)
            for engine in ENGINES:
                s1 = compute_ms(static, engine, args.seconds / 2, args.threads)
                d1 = compute_ms(dyn, engine, args.seconds / 2, args.threads, size)
                s2 = compute_ms(static, engine, args.seconds / 2, args.threads)
                d2 = compute_ms(dyn, engine, args.seconds / 2, args.threads, size)
                s, d = (s1 + s2) / 2, (d1 + d2) / 2
                first = first_call_ms(dyn, engine, size, args.threads)
                r = {"size": list(size), "engine": engine, "static_ms": round(s, 2),
                     "dynamic_ms": round(d, 2), "ratio": round(d / s, 3),
                     "first_call_ms": round(first, 1)}
                results.append(r)
                print(r, flush=True)
                rows.append([f"{size[0]}x{size[1]}", engine, f"{s:.1f}", f"{d:.1f}",
                             f"{d / s:.2f}x", f"{first:.0f}"])
    date = time.strftime("%Y-%m-%d", time.gmtime())
    (lo_h, lo_w), (hi_h, hi_w) = args.range
    intro = (f"{date}, host ISA: {isa()}, {args.threads} threads. {args.model} FP32 (random "
             f"weights), one graph exported with `--dynamic size --size-range "
             f"{lo_h}x{lo_w}:{hi_h}x{hi_w}` (nominal {args.nominal[0]}x{args.nominal[1]}) "
             "against a static export at each size; graph compute, median ms, the mean of two "
             f"{args.seconds / 2:g} s runs each, static and dynamic alternating. `first call`: "
             "the dynamic graph's first run at that size in a fresh runner (OpenVINO compiles "
             "a static model per input shape then). What was not measured: TensorRT and GPUs "
             "(no device here), INT8.")
    save(args.out, "dynamic_size", {"date": date, "isa": isa(), "model": args.model,
                                    "range": [list(args.range[0]), list(args.range[1])],
                                    "nominal": list(args.nominal), "threads": args.threads,
                                    "results": results},
         "A dynamic height/width against fixed-size graphs", intro,
         ["size", "engine", "static ms", "dynamic ms", "dynamic / static",
          "first call ms (dynamic)"], rows)


if __name__ == "__main__":
    main()
