"""The one preprocessing definition: the numpy resizes are bit-exact against Pillow (one axis
at a time, the order this project defines) and the score resize against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeseg.core.preprocess import (
    Preprocess,
    resize_array,
    resize_bilinear_numpy,
    resize_nearest_numpy,
    resize_scores,
)


def _sizes(n, seed, top=160):
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(1, top, 4)) for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_bilinear_is_pillow_one_axis_at_a_time(seed):
    rng = np.random.default_rng(seed)
    for h, w, oh, ow in _sizes(60, seed):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pil = Image.fromarray(img)
        if ow != w:
            pil = pil.resize((ow, h), Image.BILINEAR)
        if oh != h:
            pil = pil.resize((ow, oh), Image.BILINEAR)
        got = resize_bilinear_numpy(img, (oh, ow))
        assert np.array_equal(got, np.asarray(pil)), (h, w, oh, ow)
        assert np.array_equal(resize_array(img, (oh, ow), nearest=False), got), (h, w, oh, ow)


def test_numpy_nearest_is_pillow():
    rng = np.random.default_rng(3)
    for h, w, oh, ow in _sizes(80, 3):
        lab = rng.integers(0, 19, (h, w), dtype=np.uint8)
        ref = np.asarray(Image.fromarray(lab).resize((ow, oh), Image.NEAREST))
        assert np.array_equal(resize_nearest_numpy(lab, (oh, ow)), ref), (h, w, oh, ow)


def test_bilinear_hand_checked():
    img = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)  # 1x2
    assert resize_bilinear_numpy(img, (1, 1))[0, 0, 0] == 128  # (0 + 255) / 2, rounded up
    ramp = np.arange(0, 256, 85, dtype=np.uint8).reshape(1, 4, 1).repeat(3, 2)  # 0 85 170 255
    up = resize_bilinear_numpy(ramp, (1, 8))[0, :, 0]
    assert up.tolist() == [0, 21, 64, 106, 149, 191, 234, 255]
    assert np.array_equal(resize_bilinear_numpy(ramp, (1, 4)), ramp)  # same size: untouched


def test_score_resize_matches_torch():
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    for h, w, oh, ow in [(8, 16, 37, 53), (32, 64, 17, 29), (5, 7, 5, 70), (9, 9, 1, 1)]:
        s = rng.normal(size=(6, h, w)).astype(np.float32)
        ref = F.interpolate(torch.from_numpy(s)[None], size=(oh, ow), mode="bilinear",
                            align_corners=False)[0].numpy()
        got = resize_scores(s, (oh, ow))
        assert got.dtype == np.float32 and got.shape == (6, oh, ow)
        np.testing.assert_allclose(got, ref, atol=2e-6, rtol=0)


def test_letterbox_restore_crops_the_padding():
    pre = Preprocess(size=(32, 64), resize="letterbox")
    (rh, rw), (top, left) = pre.geometry(90, 60)  # tall image in a wide input
    assert rh == 32 and (top, left) == (0, (64 - rw) // 2)
    scores = np.zeros((2, 32, 64), np.float32)
    scores[1, :, left:left + rw] = 1.0  # class 1 exactly on the image content
    restored = pre.restore(scores, (90, 60))
    assert restored.shape == (2, 90, 60) and (restored.argmax(0) == 1).all()
    canvas = pre.resize_image(np.zeros((90, 60, 3), np.uint8))
    assert canvas[0, 0].tolist() == [124, 116, 104]  # the padding is the rounded mean
