"""Segmentation metrics from predicted label maps, whatever produced them.

`ConfusionMatrix` accumulates over a whole set (never a mean of per-image mIoUs) and gives
per-class IoU, mIoU, pixel accuracy and mean class accuracy. `evaluate` drives any
`predict(image) -> labels` callable over a dataset, so PyTorch, ONNX Runtime, OpenVINO and
TensorRT outputs are scored by the same code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeseg.core.compare import ConfusionMatrix, Metrics, same_pixels
from edgeseg.core.frames import Pipeline
from edgeseg.core.progress import progress_bar


def evaluate(predict: Callable[[np.ndarray], np.ndarray], dataset, *,
             progress: bool = False, limit: int | None = None) -> Metrics:
    """Score `predict(HxWx3 uint8 RGB) -> HxW class ids` over `dataset` (image, labels)
    pairs, labels at the image's own size."""
    from dataclasses import replace


    classes = dataset.classes
    cm = ConfusionMatrix(classes.num_classes, classes.ignore_index)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in progress_bar(range(n), desc="eval", enable=progress, unit="img"):
        image, labels = dataset[i]
        where = str(dataset.samples[i].image) if hasattr(dataset, "samples") else f"image {i}"
        cm.update(predict(image), labels, where=where)
    return replace(cm.metrics(classes.names), images=n)


def evaluate_side_by_side(predictors: dict[str, Callable[[np.ndarray], np.ndarray]], dataset,
                          *, progress: bool = False, limit: int | None = None
                          ) -> tuple[dict[str, Metrics], dict[str, float]]:
    """Score several predictors on the same images in one pass: ({name: Metrics},
    {"a|b": share of labelled pixels where predictors a and b give the same class})."""
    from dataclasses import replace


    classes = dataset.classes
    names = list(predictors)
    cms = {k: ConfusionMatrix(classes.num_classes, classes.ignore_index) for k in names}
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    agree = dict.fromkeys(pairs, 0)
    counted = 0
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in progress_bar(range(n), desc="eval " + " | ".join(names), enable=progress,
                          unit="img"):
        image, labels = dataset[i]
        where = str(dataset.samples[i].image) if hasattr(dataset, "samples") else f"image {i}"
        preds = {k: p(image) for k, p in predictors.items()}
        valid = labels != classes.ignore_index
        counted += int(valid.sum())
        for k in names:
            cms[k].update(preds[k], labels, where=f"{where} ({k})")
        for a, b in pairs:
            agree[a, b] += same_pixels(preds[a], preds[b], valid)[0]
    metrics = {k: replace(cms[k].metrics(classes.names), images=n) for k in names}
    return metrics, {f"{a}|{b}": v / max(counted, 1) for (a, b), v in agree.items()}


class TorchPredictor:
    """`predict(image) -> labels` for a PyTorch model (eval mode, on whatever device and dtype
    its weights are) and a Preprocess."""

    def __init__(self, model, preprocess) -> None:
        self.model = model.eval()
        self.preprocess = preprocess

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch

        param = next(self.model.parameters())
        x = torch.from_numpy(self.preprocess(image))[None].to(param.device, param.dtype)
        with torch.inference_mode():
            logits = self.model(x)[0].float().cpu().numpy()
        scores = self.preprocess.restore(logits, image.shape[:2])
        return scores.argmax(0).astype(np.uint8)


class GraphPredictor:
    """`predict(image) -> labels` for an exported graph in an entered backend Runner, with
    the artifact's own pre- and postprocessing (the runtime's Pipeline: the Python
    Segmenter and this evaluation path are one code path)."""

    def __init__(self, runner, meta: dict) -> None:

        self.runner = runner
        self.pipeline = Pipeline(meta)
        self.input = meta["input"]
        self.prepare, self.pick, self.finish = (self.pipeline.prepare, self.pipeline.pick,
                                                self.pipeline.finish)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        out = self.runner.infer({self.input["name"]: self.prepare(image)})
        return self.finish(self.pick(out)[0], image.shape[:2])
