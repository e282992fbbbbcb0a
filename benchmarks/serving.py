"""Serving through Triton Inference Server on this machine: throughput and latency of the
Segmenter model of an `edgeseg triton` repository at concurrency 1/4/16, with and without
Triton's dynamic batcher, against the in-process Segmenter; writes
benchmarks/serving.{json,md}.

    python benchmarks/serving.py [--model bisenetv1] [--size 256x512] [--frame 512x1024]
                                 [--seconds 10] [--concurrency 1 4 16]

The artifact is the model exported FP32 with a dynamic batch (the trained baseline when
cached, else random weights: speed does not depend on the values), served by the nvidia-
pytriton wheel's tritonserver (Python backend, CPU) on loopback; each client is a thread with
its own gRPC client sending one camera frame (uint8 RGB, --frame) per request and waiting for
its labels. Clients and server share this machine's cores: a figure is the whole system's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from _results import save

from edgeseg.baseline import DEFAULT_CACHE, RECIPES
from edgeseg.bench.latency import summarize
from edgeseg.cli.common import parse_size
from edgeseg.core.host import isa
from edgeseg.runtime import Segmenter
from edgeseg.triton.client import TritonSegmenter
from edgeseg.triton.repository import RepoConfig, write
from edgeseg.triton.server import serve

HERE = Path(__file__).resolve().parent


def artifact(model: str, size, work: Path) -> tuple[Path, str]:
    from edgeseg.export.exporter import ExportConfig, export

    ckpt = DEFAULT_CACHE / "baselines" / f"{model}-128x256.pt"
    recipe = RECIPES[model]
    out = work / "fp32"
    export(ExportConfig(out=str(out), checkpoint=str(ckpt) if ckpt.is_file() else None,
                        model=None if ckpt.is_file() else recipe.get("model", model),
                        num_classes=8, size=size, dynamic="batch",
                        formats=("onnx", "openvino"), parity_backends=("onnxruntime",),
                        parity_inputs=1), log=lambda m: None)
    return out, "trained" if ckpt.is_file() else "random"


def stats(http: str, model: str) -> tuple[int, int]:
    """(inferences, executions) Triton counted for the model: their ratio is the mean batch."""
    with urllib.request.urlopen(f"http://{http}/v2/models/{model}/stats", timeout=5) as r:
        s = json.load(r)["model_stats"][0]
    return int(s["inference_count"]), int(s["execution_count"])


def load(url: str, model: str, frame: np.ndarray, clients: int, seconds: float) -> dict:
    """`clients` threads sending `frame` back to back for `seconds`; latencies in ms."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds
    errors: list[str] = []

    def run(k):
        c = TritonSegmenter(url, model, "grpc")
        try:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                c.predict(frame)
                lat[k].append(1e3 * (time.perf_counter() - t0))
        except Exception as e:  # recorded: a benchmark that lost requests says so
            errors.append(str(e))
        finally:
            c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    all_ms = [ms for x in lat for ms in x]
    st = summarize(all_ms) if all_ms else None
    return {"requests": len(all_ms), "seconds": round(wall, 2),
            "throughput": len(all_ms) / wall,
            "p50_ms": st.median_ms if st else None, "p99_ms": st.p99_ms if st else None,
            "errors": errors}


def in_process(art: Path, frame: np.ndarray, seconds: float, backend: str,
               threads: int) -> dict:
    with Segmenter(art, backend=backend, threads=threads) as s:
        for _ in range(3):
            s.predict(frame)
        ms, stop = [], time.monotonic() + seconds
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            s.predict(frame)
            ms.append(1e3 * (time.perf_counter() - t0))
    st = summarize(ms)
    return {"requests": st.iters, "throughput": 1e3 / st.mean_ms, "p50_ms": st.median_ms,
            "p99_ms": st.p99_ms}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bisenetv1", choices=list(RECIPES))
    p.add_argument("--size", type=parse_size, default=(256, 512))
    p.add_argument("--frame", type=parse_size, default=(512, 1024))
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--backend", default="openvino", help="the served Segmenter's engine")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", type=Path, default=HERE)
    args = p.parse_args()
    frame = np.random.default_rng(0).integers(0, 256, (*args.frame, 3), dtype=np.uint8)
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="edgeseg-serving-") as tmp:
        work = Path(tmp)
        art, weights = artifact(args.model, args.size, work)
        base = in_process(art, frame, args.seconds, args.backend, args.threads)
        results["in-process"] = base
        print(f"in-process Segmenter: {base['throughput']:.1f} frames/s", flush=True)
        for batching in (True, False):
            mode = "dynamic batching" if batching else "no batching"
            repo = work / ("repo-batch" if batching else "repo-single")
            write(RepoConfig(str(art), str(repo), backends=("python",),
                             dynamic_batching=batching, segmenter_backend=args.backend,
                             threads=args.threads), log=lambda m: None)
            name = args.model
            with serve(repo, [name]) as server:
                load(server.grpc, name, frame, max(args.concurrency), 3.0)  # warm-up
                for c in args.concurrency:
                    before = stats(server.http, name)
                    r = load(server.grpc, name, frame, c, args.seconds)
                    after = stats(server.http, name)
                    execs = after[1] - before[1]
                    r["mean_batch"] = (after[0] - before[0]) / execs if execs else None
                    results[f"{mode}, concurrency {c}"] = r
                    print(f"{mode}, {c} clients: {r['throughput']:.1f} frames/s, p50 "
                          f"{r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, mean batch "
                          f"{r['mean_batch']:.2f}, errors {len(r['errors'])}", flush=True)
                    rows.append([mode, str(c), f"{r['throughput']:.1f}",
                                 f"{r['throughput'] / base['throughput']:.2f}x",
                                 f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                                 f"{r['mean_batch']:.2f}" if r["mean_batch"] else "-",
                                 str(r["requests"]), str(len(r["errors"]))])
    rows.insert(0, ["in-process Segmenter (no server)", "1", f"{base['throughput']:.1f}",
                    "1.00x", f"{base['p50_ms']:.1f}", f"{base['p99_ms']:.1f}", "1",
                    str(base["requests"]), "0"])
    date = time.strftime("%Y-%m-%d", time.gmtime())
    intro = (f"{date}, host ISA: {isa()}, {os.cpu_count()} cores shared by server and "
             f"clients. {args.model} ({weights} weights) FP32 at {args.size[0]}x"
             f"{args.size[1]} with a dynamic batch, served as the Segmenter model of an "
             f"`edgeseg triton` repository ({args.backend}, {args.threads} threads) by the "
             "nvidia-pytriton wheel's tritonserver (Python backend, CPU, loopback gRPC). "
             f"Each client sends one {args.frame[0]}x{args.frame[1]} uint8 frame per request "
             f"and waits for its labels, for {args.seconds:g} s per row after a warm-up; "
             "`mean batch`: images per model execution, from Triton's statistics. What was "
             "not measured: GPUs, TensorRT, several server instances, a network between "
             "client and server.")
    save(args.out, "serving", {"date": date, "isa": isa(), "model": args.model,
                               "weights": weights, "size": list(args.size),
                               "frame": list(args.frame), "backend": args.backend,
                               "threads": args.threads, "results": results},
         "Serving through Triton Inference Server", intro,
         ["mode", "clients", "frames/s", "vs in-process", "p50 ms", "p99 ms", "mean batch",
          "requests", "errors"], rows)


if __name__ == "__main__":
    main()
