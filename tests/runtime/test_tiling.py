"""Sliding-window inference: windows cover the image, blending is an exact average where
windows agree, and a local network tiled matches the same network run at full size."""

from __future__ import annotations

import numpy as np
import pytest

from edgeseg.runtime.tiling import ramp, tile_starts, tiled_scores


@pytest.mark.parametrize("length, tile, overlap", [
    (64, 64, 0.25), (65, 64, 0.25), (200, 64, 0.25), (200, 64, 0.0), (1000, 97, 0.5),
    (30, 64, 0.2)])
def test_windows_cover_with_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] == length - tile
    gaps = np.diff(starts)
    assert (gaps > 0).all() and (gaps <= tile * (1 - overlap) + 1).all()


def test_overlap_out_of_range():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 10, 1.0)


def test_ramp_is_positive_and_flat_in_the_middle():
    r = ramp(64, 0.25)
    assert (r > 0).all() and r[32] == 1.0 and r[0] < 0.1 and np.allclose(r, r[::-1])


def test_blending_reproduces_what_every_window_agrees_on():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 150, 3), dtype=np.uint8)
    calls = []

    def run(win):  # "scores" = the pixels themselves: every window agrees everywhere
        calls.append(win.shape)
        return win.transpose(2, 0, 1).astype(np.float32)

    out = tiled_scores(image, (32, 64), 0.25, run, np.zeros(3, np.uint8))
    assert out.shape == (3, 70, 150) and all(c == (32, 64, 3) for c in calls)
    np.testing.assert_allclose(out, image.transpose(2, 0, 1), atol=1e-3)


def test_small_image_is_padded_and_cropped_back():
    image = np.full((10, 20, 3), 7, np.uint8)
    out = tiled_scores(image, (32, 64), 0.25, lambda w: w.transpose(2, 0, 1).astype(np.float32),
                       np.array([1, 2, 3], np.uint8))
    assert out.shape == (3, 10, 20) and np.allclose(out, 7)


def test_tiled_local_network_matches_full_size(local_artifact, big_local_artifact):
    """The graph only sees a 5x5 neighbourhood, so tiles differ from a full-size run only
    within 2 pixels of a window edge, where the blend mixes in the neighbour's view."""
    from edgeseg.runtime import Segmenter

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)  # 4x the input area
    with Segmenter(local_artifact, backend="onnxruntime") as tiled, \
            Segmenter(big_local_artifact, backend="onnxruntime") as full:
        t = tiled.predict(image, tile=True, overlap=0.25)
        f = full.predict(image)  # the same graph at the image's own size: no resize
    assert t.shape == f.shape == (64, 128)
    agree = (t == f).mean()
    assert agree > 0.97, agree
