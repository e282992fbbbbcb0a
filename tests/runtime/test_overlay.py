from __future__ import annotations

import numpy as np
import pytest

from edgeseg.runtime.overlay import colorize, overlay

PALETTE = [(128, 64, 128), (0, 0, 142)]


def test_colorize_by_hand():
    labels = np.array([[0, 1], [255, 1]], np.uint8)
    out = colorize(labels, PALETTE)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [128, 64, 128] and out[0, 1].tolist() == [0, 0, 142]
    assert out[1, 0].tolist() == [0, 0, 0]  # ignore: no palette entry


def test_overlay_blends_by_alpha():
    image = np.full((1, 2, 3), 200, np.uint8)
    labels = np.array([[0, 1]], np.uint8)
    half = overlay(image, labels, PALETTE, alpha=0.5)
    assert half[0, 0].tolist() == [164, 132, 164]  # (200 + 128) / 2, (200 + 64) / 2, ...
    assert overlay(image, labels, PALETTE, alpha=0.0).tolist() == image.tolist()
    assert overlay(image, labels, PALETTE, alpha=1.0).tolist() == colorize(labels,
                                                                            PALETTE).tolist()


def test_overlay_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in size"):
        overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3), np.uint8), PALETTE)
    with pytest.raises(ValueError, match="alpha must be within"):
        overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8), PALETTE, alpha=2)
    with pytest.raises(ValueError, match="HxW label map"):
        colorize(np.zeros((2, 2, 1), np.uint8), PALETTE)
