"""The evaluator against hand-computed numbers and an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest

from edgeseg.core.compare import ConfusionMatrix
from edgeseg.data.classes import ClassSet
from edgeseg.evaluate import evaluate

TRUTH = np.array([[0, 0, 1, 1],
                  [0, 2, 2, 255]])
PRED = np.array([[0, 1, 1, 1],
                 [2, 2, 0, 0]])


def test_hand_computed_confusion_matrix():
    cm = ConfusionMatrix(3)
    cm.update(PRED, TRUTH)
    # rows truth, cols prediction; the 255 pixel is ignored
    assert cm.matrix.tolist() == [[1, 1, 1],
                                  [0, 2, 0],
                                  [1, 0, 1]]
    m = cm.metrics(["a", "b", "c"])
    # IoU: a = 1/(3+2-1) = 1/4, b = 2/(2+3-2) = 2/3, c = 1/(2+2-1) = 1/3
    assert m.per_class_iou == pytest.approx({"a": 0.25, "b": 2 / 3, "c": 1 / 3})
    assert m.miou == pytest.approx((0.25 + 2 / 3 + 1 / 3) / 3)
    assert m.pixel_accuracy == pytest.approx(4 / 7)
    assert m.mean_class_accuracy == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
    assert m.pixels == 7


def test_absent_class_is_excluded_not_zero():
    cm = ConfusionMatrix(4)
    cm.update(PRED, TRUTH)
    m = cm.metrics()
    assert m.per_class_iou["3"] is None
    assert m.miou == pytest.approx((0.25 + 2 / 3 + 1 / 3) / 3)


def independent_miou(preds, truths, n, ignore=255):
    """Set-based IoU per class over all pixels, no confusion matrix."""
    p = np.concatenate([x.ravel() for x in preds])
    t = np.concatenate([x.ravel() for x in truths])
    keep = t != ignore
    p, t = p[keep], t[keep]
    ious = []
    for c in range(n):
        inter = np.sum((p == c) & (t == c))
        union = np.sum((p == c) | (t == c))
        if union:
            ious.append(inter / union)
    return float(np.mean(ious))


def test_accumulates_over_the_set_like_an_independent_computation():
    rng = np.random.default_rng(0)
    truths = [rng.integers(0, 5, (20, 30)) for _ in range(6)]
    for t in truths:
        t[rng.random(t.shape) < 0.1] = 255
    preds = [np.where(rng.random(t.shape) < 0.7, np.minimum(t, 4), rng.integers(0, 5, t.shape))
             for t in truths]
    cm = ConfusionMatrix(5)
    for p, t in zip(preds, truths):
        cm.update(p, t)
    assert cm.metrics().miou == pytest.approx(independent_miou(preds, truths, 5))
    # ... which is not the mean of per-image mIoUs
    per_image = np.mean([independent_miou([p], [t], 5) for p, t in zip(preds, truths)])
    assert cm.metrics().miou != pytest.approx(per_image, abs=1e-9)


def test_bad_predictions_are_named():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"img7.png: prediction shape \(2, 3\) differs"):
        cm.update(np.zeros((2, 3)), np.zeros((2, 4)), where="img7.png")
    with pytest.raises(ValueError, match="predicted class ids outside 0..2"):
        cm.update(np.full((2, 2), 3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="label values outside 0..2"):
        cm.update(np.zeros((2, 2)), np.full((2, 2), 5))


class TinySet:
    classes = ClassSet("t", ("a", "b", "c"), ((0, 0, 0),) * 3)

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return np.zeros((*TRUTH.shape, 3), np.uint8), TRUTH


def test_evaluate_drives_any_predictor():
    m = evaluate(lambda img: PRED, TinySet())
    assert m.images == 2 and m.pixels == 14
    assert m.miou == pytest.approx((0.25 + 2 / 3 + 1 / 3) / 3)
    assert evaluate(lambda img: PRED, TinySet(), limit=1).images == 1


def test_torch_predictor_follows_the_model_dtype():
    import torch

    from edgeseg.data.transforms import Preprocess
    from edgeseg.evaluate import TorchPredictor
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("icnet", num_classes=3).double()
    img = np.random.default_rng(0).integers(0, 255, (40, 70, 3), dtype=np.uint8)
    labels = TorchPredictor(model, Preprocess((64, 64)))(img)
    assert labels.shape == (40, 70) and labels.dtype == np.uint8 and labels.max() < 3


class _FakeRunner:
    """Returns class 1 on the left quarter of the network input, class 0 elsewhere."""

    def __init__(self, kind):
        self.kind = kind

    def infer(self, inputs):
        x = inputs["input"]
        h, w = x.shape[2:]
        labels = np.zeros((1, h, w), np.uint8)
        labels[:, :, : w // 4] = 1
        if self.kind == "labels":
            return {"out": labels}
        logits = np.stack([1.0 - labels, labels.astype(np.float32)], 1).astype(np.float32)
        return {"out": logits}


@pytest.mark.parametrize("kind", ["logits", "labels"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_graph_predictor_maps_back_to_the_image(kind, resize):
    from edgeseg.evaluate import GraphPredictor

    meta = {"input": {"name": "input", "size": [32, 64], "resize": resize, "color": "RGB",
                      "network_color": "RGB", "mean": [0, 0, 0], "std": [1, 1, 1],
                      "fused_preprocess": False},
            "output": {"name": "out", "kind": kind}, "model": {"num_classes": 2}}
    image = np.zeros((40, 40, 3), np.uint8)  # square: letterbox pads left and right
    pred = GraphPredictor(_FakeRunner(kind), meta)(image)
    assert pred.shape == (40, 40) and pred.dtype == np.uint8
    if resize == "stretch":
        assert (pred[:, :8] == 1).all() and (pred[:, 12:] == 0).all()
    else:  # the content is the middle 32x32 of the 32x64 input; the quarter is padding
        assert (pred == 0).all()
