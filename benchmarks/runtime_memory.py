"""Memory of a runtime called in a loop: the Python Segmenter (and the C++ example's
benchmark program when built) predicts the same odd-sized frame N times; resident memory
(VmRSS) is sampled along the way. A leak shows as a slope. Writes
benchmarks/runtime_memory.{json,md}.

    python benchmarks/runtime_memory.py [ARTIFACT] [--calls 10000] [--backend onnxruntime]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from _results import save

from edgeseg.baseline import DEFAULT_CACHE

ROOT = Path(__file__).resolve().parent.parent
CPP_BENCH = ROOT / "build" / "cpp" / "examples" / "edgeseg-bench"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def python_loop(artifact: Path, backend: str, calls: int, frame: np.ndarray) -> dict:
    from edgeseg.runtime import Segmenter

    samples = []
    every = max(1, calls // 20)
    with Segmenter(artifact, backend=backend) as seg:
        for _ in range(50):  # warm-up: allocator pools and engine caches fill here
            seg.predict(frame)
        t0 = time.perf_counter()
        for i in range(calls):
            seg.predict(frame)
            if i % every == 0 or i == calls - 1:
                samples.append((i + 1, round(rss_mib(), 2)))
        seconds = time.perf_counter() - t0
        used = seg.backend
    return summarize("python", used, samples, seconds)


def summarize(runtime: str, backend: str, samples: list, seconds: float) -> dict:
    calls = np.array([c for c, _ in samples], float)
    rss = np.array([r for _, r in samples], float)
    slope = float(np.polyfit(calls, rss, 1)[0] * 1000) if len(samples) > 2 else float("nan")
    return {"runtime": runtime, "backend": backend, "calls": int(calls[-1]),
            "seconds": round(seconds, 1), "rss_first_mib": rss[0], "rss_last_mib": rss[-1],
            "rss_max_mib": float(rss.max()), "slope_mib_per_1000_calls": round(slope, 4),
            "samples": samples}


def cpp_loop(artifact: Path, calls: int, image: Path) -> dict | None:
    if not CPP_BENCH.is_file():
        print(f"no {CPP_BENCH}; build it with `make cpp` to include the C++ runtime")
        return None
    t0 = time.perf_counter()
    out = subprocess.run([str(CPP_BENCH), str(artifact), "--image", str(image), "--iters",
                          str(calls), "--warmup", "50", "--rss-every", str(max(1, calls // 20)),
                          "--json"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    return summarize("c++", result["backend"]["name"], [tuple(s) for s in result["rss_samples"]],
                     time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifact", nargs="?", type=Path,
                    default=DEFAULT_CACHE / "matrix" / "bisenetv2-128x256-int8-onnxruntime")
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()
    from PIL import Image

    rng = np.random.default_rng(0)
    frame = np.asarray(Image.fromarray(rng.integers(0, 256, (30, 50, 3), np.uint8))
                       .resize((517, 333), Image.BILINEAR))
    rows = [python_loop(args.artifact, args.backend, args.calls, frame)]
    print(json.dumps({k: v for k, v in rows[-1].items() if k != "samples"}), flush=True)
    png = args.out / ".runtime_memory_frame.png"
    Image.fromarray(frame).save(png)
    try:
        cpp = cpp_loop(args.artifact, args.calls, png)
    finally:
        png.unlink(missing_ok=True)
    if cpp:
        rows.append(cpp)
        print(json.dumps({k: v for k, v in cpp.items() if k != "samples"}), flush=True)
    save(args.out, "runtime_memory",
         {"artifact": args.artifact.name, "frame": [333, 517], "rows": rows},
         "Runtime memory over repeated calls",
         f"`{args.artifact.name}`, one 333x517 frame predicted {args.calls} times after 50 "
         "warm-up calls, VmRSS sampled 20 times.",
         ["runtime", "backend", "calls", "seconds", "RSS first MiB", "RSS last MiB", "max MiB",
          "slope MiB/1000 calls"],
         [[r["runtime"], r["backend"], str(r["calls"]), str(r["seconds"]),
           f"{r['rss_first_mib']:.1f}", f"{r['rss_last_mib']:.1f}", f"{r['rss_max_mib']:.1f}",
           f"{r['slope_mib_per_1000_calls']:+.3f}"] for r in rows])

if __name__ == "__main__":
    main()
