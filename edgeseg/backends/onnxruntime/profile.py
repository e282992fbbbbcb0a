"""Per-node time from ONNX Runtime's own profiler (SessionOptions.enable_profiling): each
node's kernel time, averaged over the profiled runs, with its op type as ONNX Runtime ran it
(after its graph optimizations, so a Q/DQ-wrapped Conv shows up as QLinearConv)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from edgeseg.backends.common import load_failed, require_model_file


def profile(model_path: str | Path, inputs: dict[str, np.ndarray], *, runs: int = 5,
            warmup: int = 2, threads: int | None = None) -> list[dict]:
    """[{node, op, exec, ms}] per node, mean over `runs` after `warmup` runs."""
    import onnxruntime as ort

    model_path = Path(model_path)
    require_model_file(model_path, "ONNX Runtime")
    with tempfile.TemporaryDirectory(prefix="edgeseg-ort-profile-") as tmp:
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        try:
            session = ort.InferenceSession(str(model_path), opts,
                                           providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own types
            raise load_failed(model_path, "ONNX Runtime", e) from e
        for _ in range(warmup + runs):
            session.run(None, inputs)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, dict] = {}
    for ev in events:
        if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
            continue
        node = ev["name"].removesuffix("_kernel_time")
        args = ev.get("args", {})
        row = per_node.setdefault(node, {"node": node, "op": args.get("op_name", "?"),
                                         "exec": args.get("provider", ""), "us": []})
        row["us"].append(float(ev.get("dur", 0)))
    rows = []
    for row in per_node.values():
        times = row.pop("us")[-runs:]  # the first ones are the profiled session's warm-up
        rows.append({**row, "ms": float(np.mean(times)) / 1000.0})
    return rows
