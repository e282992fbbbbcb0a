"""Sliding-window (tiled) inference: an image larger than the network input is cut into
network-size windows that overlap, each window runs at full resolution, and the score maps
are blended with weights that ramp down towards each window's edge (so a seam gets the
average of both neighbours rather than a step). numpy only."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgeseg.core.errors import UsageError


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Window starts along one axis: the fewest windows with at least `overlap` (a share of
    the window) between neighbours, spread evenly, the first at 0 and the last at the end."""
    if not 0.0 <= overlap < 1.0:
        raise UsageError(f"overlap must be within [0, 1), got {overlap}")
    if length <= tile:
        return [0]
    stride = max(1, math.floor(tile * (1.0 - overlap)))
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def ramp(tile: int, overlap: float) -> np.ndarray:
    """Blend weights along one axis of a window: 1 in the middle, falling linearly over the
    overlap towards each edge, never 0 (a pixel that only one window sees keeps its value)."""
    width = max(1.0, tile * overlap)
    i = np.arange(tile, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i + 1.0, tile - i) / np.float32(width)).astype(np.float32)


def tiled_scores(image: np.ndarray, tile_hw: tuple[int, int], overlap: float,
                 run: Callable[[np.ndarray], np.ndarray], pad_value: np.ndarray) -> np.ndarray:
    """C x H x W scores for an HxWx3 uint8 image: `run(window)` gives C x th x tw scores for
    a th x tw x 3 window. An image smaller than a window along an axis is padded with
    `pad_value` (the mean colour, as the letterbox does) and the padding cropped again."""
    th, tw = tile_hw
    h, w = image.shape[:2]
    ph, pw = max(h, th), max(w, tw)
    if (ph, pw) != (h, w):
        canvas = np.empty((ph, pw, 3), np.uint8)
        canvas[:] = pad_value
        canvas[:h, :w] = image
        image = canvas
    weight = ramp(th, overlap)[:, None] * ramp(tw, overlap)[None, :]
    acc = None
    total = np.zeros((ph, pw), np.float32)
    for top in tile_starts(ph, th, overlap):
        for left in tile_starts(pw, tw, overlap):
            s = run(np.ascontiguousarray(image[top:top + th, left:left + tw]))
            if acc is None:
                acc = np.zeros((s.shape[0], ph, pw), np.float32)
            acc[:, top:top + th, left:left + tw] += s * weight
            total[top:top + th, left:left + tw] += weight
    acc /= total
    return acc[:, :h, :w]
