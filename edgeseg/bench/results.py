"""Benchmark result files: one JSON object per run, versioned, validated on write and read.

Schema "edgeseg-bench-result", version 1:

    schema, schema_version, created (UTC ISO 8601)
    artifact   {path, model, precision, target, input_shape, output_kind, onnx_sha256,
                reference_miou, miou}
    backend    {name, file, options}
    config     {iters, seconds, warmup, batch, threads}
    latency_ms statistics of the compute phase (one batch through the engine)
    phases_ms  {phase: statistics}: preprocess, copy_in, compute, copy_out, postprocess
               (the ones this backend can separate)
    end_to_end_ms  statistics from a decoded image to a label map at the image's size
    fps        frames per second at the median compute latency (batch frames per run)
    memory     {peak_host_mib, device_peak_mib}
    power      null, or {source, samples, rails_mw, total_rail, mean_w, energy_per_frame_mj}
    accuracy   null, or {miou, per_class_iou, val, images}
    system     the system profile (edgeseg.bench.sysinfo)

A statistics object is {iters, min_ms, mean_ms, median_ms, p90_ms, p99_ms, max_ms, std_ms,
fps}.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from edgeseg.core.errors import InputError, OutputExists

SCHEMA = "edgeseg-bench-result"
SCHEMA_VERSION = 1
STAT_KEYS = ("iters", "min_ms", "mean_ms", "median_ms", "p90_ms", "p99_ms", "max_ms", "std_ms")
PHASES = ("preprocess", "copy_in", "compute", "copy_out", "postprocess")
TOP = {"schema": str, "schema_version": int, "created": str, "artifact": dict,
       "backend": dict, "config": dict, "latency_ms": dict, "phases_ms": dict,
       "end_to_end_ms": dict, "fps": (int, float), "memory": dict, "system": dict}


class ResultError(InputError):
    """A result file that cannot be used: unreadable, truncated, other schema, malformed."""


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _stats_errors(where: str, s: Any) -> list[str]:
    if not isinstance(s, dict):
        return [f"{where}: expected a statistics object, got {type(s).__name__}"]
    errs = [f"{where}.{k}: missing or not a number" for k in STAT_KEYS
            if not _number(s.get(k))]
    if errs:
        return errs
    if s["iters"] < 1:
        errs.append(f"{where}.iters: must be >= 1")
    if min(s[k] for k in STAT_KEYS[1:]) < 0:
        errs.append(f"{where}: negative times")
    if not s["min_ms"] <= s["median_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]:
        errs.append(f"{where}: order statistics out of order (min <= median <= p90 <= p99 "
                    "<= max)")
    return errs


def validate(obj: Any) -> list[str]:
    """Every problem found in a result object (empty when it is valid)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    if obj.get("schema") != SCHEMA:
        return [f"not an edgeseg benchmark result (schema {obj.get('schema')!r})"]
    version = obj.get("schema_version")
    if not isinstance(version, int):
        return ["schema_version must be an integer"]
    if version < SCHEMA_VERSION:
        return [f"schema version {version} is older than this edgeseg reads "
                f"({SCHEMA_VERSION}); re-run `edgeseg bench` on that device to refresh it"]
    if version > SCHEMA_VERSION:
        return [f"schema version {version} is newer than this edgeseg reads "
                f"({SCHEMA_VERSION}); upgrade edgeseg"]
    errs = [f"{k}: missing or not {t.__name__ if isinstance(t, type) else 'a number'}"
            for k, t in TOP.items() if not isinstance(obj.get(k), t)]
    if errs:
        return errs
    errs += _stats_errors("latency_ms", obj["latency_ms"])
    errs += _stats_errors("end_to_end_ms", obj["end_to_end_ms"])
    unknown = sorted(set(obj["phases_ms"]) - set(PHASES))
    if unknown:
        errs.append(f"phases_ms: unknown phases {unknown}; known: {', '.join(PHASES)}")
    if "compute" not in obj["phases_ms"]:
        errs.append("phases_ms: the compute phase is missing")
    for phase, s in obj["phases_ms"].items():
        errs += _stats_errors(f"phases_ms.{phase}", s)
    for k in ("model", "precision"):
        if not isinstance(obj["artifact"].get(k), str):
            errs.append(f"artifact.{k}: missing")
    if not isinstance(obj["backend"].get("name"), str):
        errs.append("backend.name: missing")
    batch = obj["config"].get("batch")
    if not (isinstance(batch, int) and batch >= 1):
        errs.append("config.batch: must be an integer >= 1")
    if obj["fps"] <= 0:
        errs.append("fps: must be positive")
    acc = obj.get("accuracy")
    if acc is not None and not (isinstance(acc, dict) and _number(acc.get("miou"))
                                and 0 <= acc["miou"] <= 1):
        errs.append("accuracy.miou: must be a number in [0, 1]")
    power = obj.get("power")
    if power is not None and not (isinstance(power, dict) and _number(power.get("mean_w"))):
        errs.append("power.mean_w: must be a number (or power null when no sensor)")
    return errs


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate one result file; ResultError says what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ResultError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        body = text.rstrip()
        cut = e.pos >= len(body) or e.msg.startswith("Unterminated") or \
            not body.endswith(("}", "]"))
        what = "truncated" if cut else "not valid JSON"
        raise ResultError(f"{path}: {what} ({e.msg}: line {e.lineno} column {e.colno}); re-run the "
                          "benchmark that wrote it") from None
    errs = validate(obj)
    if errs:
        raise ResultError(f"{path}: " + "; ".join(errs))
    return obj


def write(obj: dict[str, Any], path: str | Path, *, overwrite: bool = True) -> Path:
    """Validate, then write atomically (a failed run never leaves a half-written file);
    without `overwrite` an existing file is kept and it is an error."""
    errs = validate(obj)
    if errs:
        raise ResultError("refusing to write an invalid result: " + "; ".join(errs))
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExists(f"{path} exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)
    return path


def default_name(obj: dict[str, Any]) -> str:
    """<model>-<precision>[-<target>]-<backend>-<HxW>-b<batch>.json"""
    a, shape = obj["artifact"], obj["artifact"].get("input_shape") or []
    hw = "x".join(str(d) for d in shape[-2:]) if len(shape) == 4 else "dyn"
    if len(shape) == 4 and shape[-1] == 3:  # NHWC (fused preprocessing)
        hw = f"{shape[1]}x{shape[2]}"
    parts = [a["model"], a["precision"], a.get("target"), obj["backend"]["name"], hw,
             f"b{obj['config']['batch']}"]
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", "-".join(p for p in parts if p)) + ".json"


def collect(paths: list[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Results from files and directories (searched recursively for *.json), plus one
    message per file that could not be used: nothing is skipped silently."""
    files: list[Path] = []
    problems: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.json"))
            if not found:
                problems.append(f"{p}: no result files (*.json) in this directory")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or directory")
    results = []
    for f in files:
        try:
            r = load(f)
        except ResultError as e:
            problems.append(str(e))
            continue
        r["_file"] = str(f)
        results.append(r)
    return results, problems
