"""Label maps as pictures: a palette image and an alpha blend over the frame (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeseg.core.errors import UsageError


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]],
             ignore_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """HxW class ids -> HxWx3 uint8 RGB; ids without a palette entry (ignore) get
    `ignore_color`."""
    if labels.ndim != 2:
        raise UsageError(f"expected an HxW label map, got shape {labels.shape}")
    lut = np.tile(np.asarray(ignore_color, np.uint8), (256, 1))
    lut[:len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    return lut[labels.astype(np.uint8)]


def overlay(image: np.ndarray, labels: np.ndarray, palette: Sequence[Sequence[int]],
            alpha: float = 0.5) -> np.ndarray:
    """The frame with the colorized labels blended over it (alpha = label opacity)."""
    if image.shape[:2] != labels.shape:
        raise UsageError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"alpha must be within [0, 1], got {alpha}")
    color = colorize(labels, palette).astype(np.float32)
    out = image.astype(np.float32) * (1.0 - alpha) + color * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
