"""The one comparator: agreement, SQNR, max/mean differences and the mIoU delta."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeseg.core.compare import ParityError, agreement, compare_outputs, same_pixels, sqnr_db


def test_agreement_counts_pixels_not_images():
    a = [np.zeros((2, 2), int), np.zeros((4, 4), int)]
    b = [np.ones((2, 2), int), np.zeros((4, 4), int)]  # the small image disagrees everywhere
    assert agreement(a, b) == pytest.approx(16 / 20)
    where = [np.array([[True, False], [False, False]]), np.ones((4, 4), bool)]
    assert agreement(a, b, where) == pytest.approx(16 / 17)
    assert same_pixels(a[0], b[0]) == (0, 4)


def test_sqnr_is_the_signal_to_noise_ratio_in_db():
    ref = [np.full((1, 2, 4, 4), 10.0)]
    assert sqnr_db(ref, [ref[0] + 1.0]) == pytest.approx(20.0)  # 100 / 1 -> 20 dB
    assert sqnr_db(ref, ref) == math.inf


def test_compare_outputs_reports_every_figure_and_the_miou_delta():
    rng = np.random.default_rng(0)
    ref = [rng.normal(size=(1, 3, 8, 8)).astype(np.float32)]
    got = [ref[0] + 0.01]
    labels = [ref[0].argmax(1)[0]]
    r = compare_outputs("x", ref, got, "logits", labels=labels, num_classes=3)
    assert r.argmax_agreement > 0.9 and r.max_abs_diff == pytest.approx(0.01, rel=1e-3)
    assert r.sqnr_db > 30 and r.miou_reference == 1.0
    assert r.miou_delta == pytest.approx(100 * (1.0 - r.miou_backend))
    assert set(r.to_dict()) >= {"sqnr_db", "miou_delta", "argmax_agreement"}
    with pytest.raises(ParityError, match="output shape"):
        compare_outputs("x", ref, [ref[0][:, :2]], "logits")
