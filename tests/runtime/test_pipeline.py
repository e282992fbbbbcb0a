"""What the runtime accepts as an image: documented conversions, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from edgeseg.core.frames import ImageError, as_rgb, softmax


def test_documented_conversions():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert as_rgb(rgb) is not rgb or as_rgb(rgb).flags.c_contiguous
    np.testing.assert_array_equal(as_rgb(rgb[..., ::-1], color="BGR"), rgb)
    view = rgb[:, ::2]  # non-contiguous
    out = as_rgb(view)
    assert out.flags.c_contiguous and np.array_equal(out, view)
    gray = rgb[..., 0]
    for g in (gray, gray[..., None]):
        out = as_rgb(g)
        assert out.shape == (5, 7, 3) and all(np.array_equal(out[..., c], gray) for c in range(3))


@pytest.mark.parametrize("bad, words", [
    (np.zeros((4, 4, 4), np.uint8), "4-channel"),
    (np.zeros((4, 4, 3), np.float32), "floats are ambiguous"),
    (np.zeros((4, 4, 3), np.uint16), "8 bits"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 2), np.uint8), "HxWx3"),
    (np.zeros((2, 4, 4, 3), np.uint8), "HxWx3"),
    ([[1, 2, 3]], "numpy array"),
])
def test_refusals_name_the_fix(bad, words):
    with pytest.raises(ImageError, match=words):
        as_rgb(bad)


def test_softmax_is_a_distribution():
    p = softmax(np.array([[1000.0, 0.0], [1000.0, 1.0]], np.float32))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(0), 1.0, rtol=1e-6)
