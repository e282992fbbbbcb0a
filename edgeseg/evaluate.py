"""Segmentation metrics from predicted label maps, whatever produced them.

`ConfusionMatrix` accumulates over a whole set (never a mean of per-image mIoUs) and gives
per-class IoU, mIoU, pixel accuracy and mean class accuracy. `evaluate` drives any
`predict(image) -> labels` callable over a dataset, so PyTorch, ONNX Runtime, OpenVINO and
TensorRT outputs are scored by the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


class ConfusionMatrix:
    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)  # rows: truth, cols: pred

    def update(self, pred: np.ndarray, target: np.ndarray, where: str = "prediction") -> None:
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"{where}: prediction shape {pred.shape} differs from the label "
                             f"shape {target.shape}; resize predictions to the label size")
        valid = target != self.ignore_index
        t, p = target[valid].astype(np.int64), pred[valid].astype(np.int64)
        if t.size and (t.max() >= self.num_classes or t.min() < 0):
            raise ValueError(f"{where}: label values outside 0..{self.num_classes - 1} "
                             f"and not {self.ignore_index}")
        if p.size and (p.max() >= self.num_classes or p.min() < 0):
            raise ValueError(f"{where}: predicted class ids outside 0..{self.num_classes - 1}")
        self.matrix += np.bincount(t * self.num_classes + p,
                                   minlength=self.num_classes**2).reshape(self.matrix.shape)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both labels and predictions."""
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / denom, np.nan)

    def metrics(self, class_names: Sequence[str] | None = None) -> Metrics:
        names = list(class_names) if class_names else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        iou = self.iou()
        tp = np.diag(self.matrix).astype(np.float64)
        total = self.matrix.sum()
        per_class_total = self.matrix.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(per_class_total > 0, tp / per_class_total, np.nan)
        present = ~np.isnan(iou)
        return Metrics(
            miou=float(np.nanmean(iou)) if present.any() else float("nan"),
            pixel_accuracy=float(tp.sum() / total) if total else float("nan"),
            mean_class_accuracy=float(np.nanmean(acc)) if (per_class_total > 0).any()
            else float("nan"),
            per_class_iou={n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
            pixels=int(total),
        )


@dataclass(frozen=True)
class Metrics:
    miou: float
    pixel_accuracy: float
    mean_class_accuracy: float
    per_class_iou: dict[str, float | None]
    pixels: int
    images: int = 0

    def to_dict(self) -> dict:
        return {"miou": self.miou, "pixel_accuracy": self.pixel_accuracy,
                "mean_class_accuracy": self.mean_class_accuracy,
                "per_class_iou": self.per_class_iou, "pixels": self.pixels,
                "images": self.images}


def evaluate(predict: Callable[[np.ndarray], np.ndarray], dataset, *,
             progress: bool = False, limit: int | None = None) -> Metrics:
    """Score `predict(HxWx3 uint8 RGB) -> HxW class ids` over `dataset` (image, labels)
    pairs, labels at the image's own size."""
    from dataclasses import replace

    from edgeseg.utils.progress import progress_bar

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

    from edgeseg.utils.progress import progress_bar

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
            agree[a, b] += int((preds[a] == preds[b])[valid].sum())
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
        from edgeseg.runtime.pipeline import Pipeline

        self.runner = runner
        self.pipeline = Pipeline(meta)
        self.input = meta["input"]
        self.prepare, self.pick, self.finish = (self.pipeline.prepare, self.pipeline.pick,
                                                self.pipeline.finish)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        out = self.runner.infer({self.input["name"]: self.prepare(image)})
        return self.finish(self.pick(out)[0], image.shape[:2])
