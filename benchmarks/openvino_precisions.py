"""Why OpenVINO's INT8 graph is barely faster than its FP32 graph under the bf16 hint on a
BF16 CPU, end to end: both graphs in OpenVINO's own profiler under each inference precision,
node time grouped (conv INT8, conv float, resize, layout, ...), with the convolution kernels
the CPU plugin chose. Uses the artifacts `edgeseg optimize` cached for the model (run
benchmarks/vs_plain_export.py, or `edgeseg optimize`, first). Writes
benchmarks/openvino_precisions.{json,md}.

    python benchmarks/openvino_precisions.py [--model bisenetv1] [--size 512x1024]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _results import save

from edgeseg.backends import inference_precisions
from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.bench.profile import GROUPS, profile_artifact
from edgeseg.bench.sysinfo import isa, system_profile
from edgeseg.cli.common import parse_size
from edgeseg.core.artifact import sha256
from edgeseg.core.errors import EdgesegError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bisenetv1")
    p.add_argument("--size", type=parse_size, default=(512, 1024))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    a = p.parse_args()
    ckpt = DEFAULT_CACHE / "baselines" / f"{a.model}-128x256.pt"
    work = (DEFAULT_CACHE / "optimize" / f"{sha256(ckpt)[:16]}-{a.size[0]}x{a.size[1]}"
            / "artifacts")
    graphs = {"fp32": work / "fp32-logits",
              "int8 (openvino target)": next(work.glob("int8-openvino-*-logits"), None),
              "int8 (onnxruntime target)": next(work.glob("int8-onnxruntime-*-logits"), None)}
    if any(g is None or not g.is_dir() for g in graphs.values()):
        raise SystemExit(f"no cached artifacts under {work}: run `edgeseg optimize "
                         f"{ckpt} --size {a.size[0]}x{a.size[1]} ...` first")
    rows, data = [], []
    for label, art in graphs.items():
        for hint in inference_precisions("openvino"):
            try:
                prof = profile_artifact(art, "openvino", hint=hint, threads=a.threads,
                                        runs=a.runs)
            except EdgesegError as e:
                data.append({"graph": label, "hint": hint, "failed": str(e)})
                rows.append([a.model, label, hint, "fails to compile", *["-"] * len(GROUPS),
                             "-"])
                continue
            kernels: dict[str, float] = {}
            for r in prof["rows"]:
                if r["op"] == "Convolution":
                    kernels[r["exec"]] = kernels.get(r["exec"], 0.0) + r["ms"]
            g = prof["groups"]
            data.append({"graph": label, "hint": hint, "total_ms": prof["total_ms"],
                         "groups": g, "conv_kernels": kernels})
            main_kernel = max(kernels, key=kernels.get) if kernels else "-"
            rows.append([a.model, label, hint, f"{prof['total_ms']:.1f}",
                         *[f"{g[k]['ms']:.1f}" for k in GROUPS], main_kernel])
    prof = system_profile(threads=a.threads)
    host = isa(prof["cpu"]["flags"])
    intro = (f"{a.model} at {a.size[0]}x{a.size[1]}, logits output, {a.threads} threads, ISA: "
             f"{host}; openvino {prof['versions'].get('openvino')}. Node time per frame "
             f"from OpenVINO's performance counters (mean of {a.runs} runs), grouped; the last "
             "column is the kernel most of the convolution time ran in. End to end (frame to "
             "label map) adds the host's preprocessing and its argmax over the logits, which "
             "are the same for every row: see docs/optimize.md.")
    save(a.out, "openvino_precisions",
         {"model": a.model, "size": list(a.size), "threads": a.threads, "isa": host,
          "versions": prof["versions"], "rows": data},
         "OpenVINO: FP32 and INT8 graphs under each inference precision", intro,
         ["model", "graph", "hint", "node ms", *[f"{g} ms" for g in GROUPS], "conv kernel"],
         rows)


if __name__ == "__main__":
    main()
