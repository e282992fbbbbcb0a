"""The dynamic dimensions of an artifact's graph input, as meta.json's input section states
them, and the one rule that picks the size an image runs at.

`input.dynamic`:

* null: every dimension is fixed (`input.shape` is all integers);
* "batch": the first dimension is dynamic ("batch" in `input.shape`);
* "size": the batch, the height and the width are dynamic ("batch", "height", "width"),
  height and width within `input.size_range` = {"min": [h, w], "max": [h, w]}, both ends
  included. `input.size` is then the nominal size: calibration, the benchmark and a
  TensorRT profile's opt shape use it.

An image runs at its own size when that is within the range. Otherwise it is scaled by one
factor, keeping its aspect ratio, until it fits (down to the max, or up to the min), and each
side is clamped to the range last (only an aspect ratio the range cannot hold is changed):

    s = 1
    if h > max_h or w > max_w: s = min(max_h / h, max_w / w)
    if h * s < min_h or w * s < min_w: s = max(min_h / h, min_w / w)
    H = clamp(floor(h * s + 0.5), min_h, max_h), and the same for W

in IEEE double arithmetic, in this order, so that the C++ runtime (cpp/src/preprocess.cpp)
computes the same sizes. The graph pads to its size divisor inside; sides need not be
multiples of 32.
"""

from __future__ import annotations

import math

from edgeseg.core.errors import UsageError

DYNAMIC_KINDS = (None, "batch", "size")


def dynamic_batch(input_meta: dict) -> bool:
    """True when the graph takes any batch size."""
    return input_meta.get("dynamic") in ("batch", "size")


def size_range(input_meta: dict) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """((min_h, min_w), (max_h, max_w)) of a dynamic-size graph, else None."""
    if input_meta.get("dynamic") != "size":
        return None
    r = input_meta.get("size_range") or {}
    try:
        lo, hi = tuple(int(v) for v in r["min"]), tuple(int(v) for v in r["max"])
    except (KeyError, TypeError, ValueError):
        raise UsageError("meta.json: input.dynamic is 'size' but input.size_range is not "
                         "{'min': [h, w], 'max': [h, w]}; re-export the artifact") from None
    check_range(lo, hi, "meta.json input.size_range")
    return lo, hi  # type: ignore[return-value]


def check_range(lo, hi, what: str) -> None:
    if len(lo) != 2 or len(hi) != 2 or min(lo) < 1 or any(a > b for a, b in zip(lo, hi)):
        raise UsageError(f"{what}: need MIN <= MAX on both sides with positive sizes, got "
                         f"{'x'.join(map(str, lo))} to {'x'.join(map(str, hi))}")


def default_range(size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The range `--dynamic size` gets without `--size-range`: half to twice the size."""
    h, w = size
    return (max(1, h // 2), max(1, w // 2)), (2 * h, 2 * w)


def fit_size(h: int, w: int, lo: tuple[int, int], hi: tuple[int, int]) -> tuple[int, int]:
    """The size an h x w image runs at in a graph that takes lo..hi (module docstring)."""
    s = 1.0
    if h > hi[0] or w > hi[1]:
        s = min(hi[0] / h, hi[1] / w)
    if h * s < lo[0] or w * s < lo[1]:
        s = max(lo[0] / h, lo[1] / w)
    return (min(max(math.floor(h * s + 0.5), lo[0]), hi[0]),
            min(max(math.floor(w * s + 0.5), lo[1]), hi[1]))


def run_size(input_meta: dict, h: int, w: int) -> tuple[int, int]:
    """The graph input size for an h x w image: the artifact's size, or for a dynamic-size
    graph the image's own size brought into the range."""
    rng = size_range(input_meta)
    if rng is None:
        return tuple(input_meta["size"])  # type: ignore[return-value]
    return fit_size(int(h), int(w), *rng)


def graph_dims(input_meta: dict, layout: str) -> list:
    """meta.json's input.shape for the size, dynamic kind and layout ("NCHW" or "NHWC")."""
    h, w = input_meta["size"]
    kind = input_meta.get("dynamic")
    if kind == "size":
        h, w = "height", "width"
    n = "batch" if kind in ("batch", "size") else 1
    return [n, 3, h, w] if layout == "NCHW" else [n, h, w, 3]
