"""Per-node time from OpenVINO's performance counters (PERF_COUNT): each executed node's
real time, averaged over the profiled runs, with its node type and the kernel the CPU plugin
chose (exec type, e.g. brgconv_avx512_amx_I8 or jit_avx512_FP32), which says in which
precision it ran."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.backends.common import load_failed, require_model_file


def profile(model_path: str | Path, inputs: dict[str, np.ndarray], *, runs: int = 5,
            warmup: int = 2, threads: int | None = None,
            precision: str | None = "f32") -> list[dict]:
    """[{node, op, exec, ms}] per executed node, mean over `runs` after `warmup` runs."""
    import openvino as ov

    model_path = Path(model_path)
    require_model_file(model_path, "OpenVINO")
    config = {"PERF_COUNT": True}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    try:
        compiled = ov.Core().compile_model(str(model_path), "CPU", config)
    except Exception as e:
        raise load_failed(model_path, "OpenVINO", e) from e
    request = compiled.create_infer_request()
    for _ in range(warmup):
        request.infer(inputs)
    times: dict[str, list[float]] = {}
    kinds: dict[str, tuple[str, str]] = {}
    for _ in range(runs):
        request.infer(inputs)
        for info in request.profiling_info:
            if str(info.status).endswith("EXECUTED"):
                times.setdefault(info.node_name, []).append(
                    info.real_time.total_seconds() * 1000.0)
                kinds[info.node_name] = (info.node_type, info.exec_type)
    return [{"node": n, "op": kinds[n][0], "exec": kinds[n][1], "ms": float(np.mean(t))}
            for n, t in times.items()]
