from __future__ import annotations

import numpy as np
import pytest

from edgeseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Augment, Preprocess


def test_normalize_values_and_layout():
    p = Preprocess(size=(2, 3))
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255
    x = p(img)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    assert x[0, 0, 0] == pytest.approx((255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0])
    assert x[2, 0, 0] == pytest.approx(-IMAGENET_MEAN[2] / IMAGENET_STD[2])


def test_bgr_swaps_channels():
    img = np.random.default_rng(0).integers(0, 255, (4, 4, 3), dtype=np.uint8)
    rgb, bgr = Preprocess((4, 4))(img), Preprocess((4, 4), color="BGR")(img)
    np.testing.assert_array_equal(rgb[::-1], bgr)


def test_letterbox_geometry_pads_with_mean_and_restores():
    p = Preprocess(size=(64, 64), resize="letterbox")
    img = np.full((32, 64, 3), 200, np.uint8)
    (rh, rw), (top, left) = p.geometry(32, 64)
    assert (rh, rw, top, left) == (32, 64, 16, 0)
    x = p(img)
    assert np.allclose(x[:, :16], 0, atol=0.01)  # mean colour normalises to ~0
    labels = np.ones((32, 64), np.uint8)
    lab = p.resize_labels(labels)
    assert (lab[:16] == 255).all() and (lab[16:48] == 1).all()
    scores = np.random.default_rng(1).normal(size=(3, 64, 64)).astype(np.float32)
    back = p.restore(scores, (32, 64))
    np.testing.assert_array_equal(back, scores[:, 16:48])


def test_stretch_restore_resizes():
    p = Preprocess(size=(16, 32))
    assert p.restore(np.zeros((2, 16, 32), np.float32), (40, 50)).shape == (2, 40, 50)


@pytest.mark.parametrize("kwargs, pattern", [({"resize": "crop"}, "resize must be"),
                                             ({"color": "HSV"}, "RGB or BGR"),
                                             ({"std": (1, 0, 1)}, "std positive")])
def test_bad_preprocess(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        Preprocess(size=(8, 8), **kwargs)


def test_bad_image_input():
    with pytest.raises(ValueError, match="HxWx3"):
        Preprocess((8, 8))(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        Preprocess((8, 8))(np.zeros((8, 8, 3), np.float32))


def test_preprocess_round_trips_through_dict():
    p = Preprocess((8, 16), resize="letterbox", color="BGR")
    assert Preprocess.from_dict(p.to_dict()) == p


def test_augment_keeps_image_and_labels_aligned():
    """Labels are a function of the colour; after scale/crop/flip that must still hold."""
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 128), np.uint8)
    labels[:, 40:90] = 1
    labels[20:30] = 2
    palette = np.array([[10, 10, 10], [200, 10, 10], [10, 200, 10]], np.uint8)
    image = palette[labels]
    aug = Augment(size=(32, 64), jitter=0.0)
    for _ in range(20):
        img, lab = aug(image, labels, rng)
        assert img.shape == (32, 64, 3) and lab.shape == (32, 64)
        valid = lab != 255
        assert set(np.unique(lab[valid]).tolist()) <= {0, 1, 2}
        # Away from class borders (bilinear blends them) the colour gives the label.
        p = np.pad(lab, 1, mode="edge")
        interior = valid & (p[:-2, 1:-1] == lab) & (p[2:, 1:-1] == lab) & \
            (p[1:-1, :-2] == lab) & (p[1:-1, 2:] == lab)
        expected = palette[lab[interior]].astype(int)
        assert (np.abs(img[interior].astype(int) - expected).sum(1) < 30).all()


def test_letterbox_restore_with_resize_inverts_the_geometry():
    """A score map that is a ramp along x in the network input maps back to a ramp over the
    original image's full width (padding rows cropped first)."""
    p = Preprocess(size=(64, 64), resize="letterbox")
    (rh, rw), (top, left) = p.geometry(60, 200)
    assert (rh, rw, top, left) == (19, 64, 22, 0)
    scores = np.zeros((2, 64, 64), np.float32)
    scores[0, top:top + rh] = 1.0  # class 0 exactly over the content
    back = p.restore(scores, (60, 200))
    assert back.shape == (2, 60, 200)
    assert np.allclose(back[0], 1.0)


def test_letterbox_augment_uses_the_letterbox_scale():
    """At scale 1 the content fills the input as letterbox would: wide images fit the width."""
    aug = Augment(size=(128, 128), scale=(1.0, 1.0), flip=False, jitter=0.0, keep_aspect=True)
    img = np.zeros((512, 1024, 3), np.uint8)
    lab = np.zeros((512, 1024), np.uint8)
    _, out = aug(img, lab, np.random.default_rng(0))
    # 512x1024 fitted into 128x128 is 64x128: 64 rows of content, the rest ignore padding
    assert (out != 255).sum() == 64 * 128


def test_augment_crop_keeps_the_inference_scale():
    """A crop smaller than the network size is cut from the image scaled as for that size,
    so objects keep the pixel size they have at inference: at scale 1 a crop of a
    horizontal ramp (x resized from 0..255 over 256 columns to 64 columns) advances 4 grey
    levels per pixel, as the full-size input does."""
    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    image = np.repeat(ramp[..., None], 3, axis=2)
    labels = np.zeros((64, 256), np.uint8)
    aug = Augment(size=(16, 64), scale=(1.0, 1.0), flip=False, jitter=0.0, crop=(8, 16))
    img, lab = aug(image, labels, np.random.default_rng(1))
    assert img.shape == (8, 16, 3) and lab.shape == (8, 16)
    steps = np.diff(img[0, :, 0].astype(int))
    assert np.all(np.abs(steps - 4) <= 1), steps
