"""TensorRT calibration caches (the text format of TensorRT's legacy implicit-INT8
calibrators), written from edgeseg's own calibration ranges.

The format, as TensorRT's IInt8EntropyCalibrator2 writes and reads it:

    TRT-<version code>-<algorithm>
    <tensor name>: <scale as the 8 hex digits of its IEEE-754 float32 bits>

one line per network tensor, where scale = amax / 127 (symmetric INT8) and tensor names are
the ONNX graph's (TensorRT's ONNX parser keeps them). The version code is
major*1000+minor*100+patch before TensorRT 10 (8.6.1 -> 8601) and major*10000+minor*100+
patch from 10 on (10.3.0 -> 100300). A cache applies to the FP32 graph it was computed on;
implicit quantization of a Q/DQ graph is an error in TensorRT.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

from edgeseg.core.errors import InputError, UsageError

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration",
              "LegacyCalibration")
_LINE = re.compile(r"^(?P<name>.+): (?P<hex>[0-9a-fA-F]{1,8})$")


class CalibrationCacheError(InputError):
    """A calibration cache file that does not parse."""


def version_code(version: str) -> int:
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    if not parts:
        raise UsageError(f"TensorRT version {version!r}: expected MAJOR.MINOR[.PATCH]")
    major, minor, patch = (parts + [0, 0])[:3]
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


def float_hex(x: float) -> str:
    return struct.pack(">f", x).hex()


def hex_float(h: str) -> float:
    return struct.unpack(">f", bytes.fromhex(h.rjust(8, "0")))[0]


def scales_from_ranges(ranges: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Symmetric INT8 scales (amax / 127) from (min, max) calibration ranges; a tensor that
    was constant zero gets the scale of amax 1 rather than 0 (any scale represents 0, and
    TensorRT divides by it)."""
    out = {}
    for name, (lo, hi) in ranges.items():
        amax = max(abs(float(lo)), abs(float(hi)))
        if not math.isfinite(amax):
            raise UsageError(f"tensor {name!r}: non-finite calibration range ({lo}, {hi})")
        out[name] = (amax if amax > 0 else 1.0) / 127.0
    return out


def write(path: str | Path, scales: dict[str, float], *, trt_version: str = "10.3.0",
          algorithm: str = "EntropyCalibration2") -> None:
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown calibrator algorithm {algorithm!r}; one of {ALGORITHMS}")
    lines = [f"TRT-{version_code(trt_version)}-{algorithm}"]
    for name, scale in sorted(scales.items()):  # one file for one set of scales
        if ":" in name or "\n" in name:
            raise UsageError(f"tensor name {name!r} cannot be written to a calibration cache")
        lines.append(f"{name}: {float_hex(scale)}")
    Path(path).write_text("\n".join(lines) + "\n")


def read(path: str | Path) -> tuple[str, dict[str, float]]:
    """(header, {tensor: scale}) of a cache file."""
    text = Path(path).read_text(errors="strict")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not re.match(r"^TRT-\d+-\w+$", lines[0]):
        raise CalibrationCacheError(f"{path}: not a TensorRT calibration cache (first line "
                                    f"{lines[0][:40] if lines else '(empty)'!r})")
    scales = {}
    for k, ln in enumerate(lines[1:], start=2):
        m = _LINE.match(ln)
        if not m:
            raise CalibrationCacheError(f"{path}:{k}: expected 'tensor: hexscale', got "
                                        f"{ln[:60]!r}")
        scales[m["name"]] = hex_float(m["hex"])
    return lines[0], scales
