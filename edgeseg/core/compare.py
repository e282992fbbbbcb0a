"""The one comparator: two runs of a model (or a run against labels) reduced to the figures
every check reports: argmax agreement, max/mean difference, SQNR, and mIoU with its delta.
Export parity, INT8 acceptance and the benchmarks all use it (Polygraphy's Comparator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgeseg.core.errors import CheckFailed, UsageError


class ConfusionMatrix:
    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise UsageError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)  # rows: truth, cols: pred

    def update(self, pred: np.ndarray, target: np.ndarray, where: str = "prediction") -> None:
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.shape != target.shape:
            raise UsageError(f"{where}: prediction shape {pred.shape} differs from the label "
                             f"shape {target.shape}; resize predictions to the label size")
        valid = target != self.ignore_index
        t, p = target[valid].astype(np.int64), pred[valid].astype(np.int64)
        if t.size and (t.max() >= self.num_classes or t.min() < 0):
            raise UsageError(f"{where}: label values outside 0..{self.num_classes - 1} "
                             f"and not {self.ignore_index}")
        if p.size and (p.max() >= self.num_classes or p.min() < 0):
            raise UsageError(f"{where}: predicted class ids outside 0..{self.num_classes - 1}")
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
            raise UsageError(f"{len(names)} class names for {self.num_classes} classes")
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


class ParityError(CheckFailed):
    """The exported graph does not compute what the model computes."""


@dataclass(frozen=True)
class Comparison:
    backend: str
    inputs: int
    max_abs_diff: float | None  # None for label outputs
    max_rel_diff: float | None
    mean_rel_diff: float | None
    argmax_agreement: float
    miou_reference: float | None = None
    miou_backend: float | None = None
    sqnr_db: float | None = None  # signal to quantization noise of the scores; None for labels

    @property
    def miou_delta(self) -> float | None:
        """mIoU points lost against the reference (positive: worse)."""
        if self.miou_reference is None or self.miou_backend is None:
            return None
        return 100 * (self.miou_reference - self.miou_backend)

    def failures(self, thresholds: dict) -> list[str]:
        out = []
        if not self.argmax_agreement >= thresholds["argmax_agreement"]:
            out.append(f"argmax agreement {self.argmax_agreement:.5f} < "
                       f"{thresholds['argmax_agreement']}")
        limit = thresholds.get("mean_rel_diff")
        if self.mean_rel_diff is not None and not math.isfinite(self.mean_rel_diff):
            out.append(f"non-finite outputs (max abs diff {self.max_abs_diff})")
        elif limit is not None and self.mean_rel_diff is not None \
                and not self.mean_rel_diff <= limit:
            out.append(f"mean relative diff {self.mean_rel_diff:.3g} > {limit}")
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "miou_delta": self.miou_delta}


def same_pixels(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> tuple[int, int]:
    """(pixels with the same class, pixels counted) of two label maps, over `where`."""
    same = a == b
    if where is None:
        return int(same.sum()), int(same.size)
    return int(same[where].sum()), int(where.sum())


def agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray],
              where: Sequence[np.ndarray] | None = None) -> float:
    """Share of pixels with the same class over label maps a[i], b[i] (of the where[i]
    pixels, when given); every pixel of the set counts once, whatever its image's size."""
    counts = [same_pixels(x, y, None if where is None else w)
              for x, y, w in zip(a, b, where if where is not None else [None] * len(a))]
    return sum(s for s, _ in counts) / max(1, sum(n for _, n in counts))


def sqnr_db(ref: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> float:
    """Signal to noise ratio of `got` against `ref` in dB, over the whole set (inf when equal):
    the figure TensorRT's and ModelOpt's tools report for a quantized layer or graph."""
    signal = sum(float(np.sum(np.square(r.astype(np.float64)))) for r in ref)
    noise = sum(float(np.sum(np.square(r.astype(np.float64) - g))) for r, g in zip(ref, got))
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def to_labels(output: np.ndarray, kind: str) -> np.ndarray:
    """N x H x W class ids from any output kind."""
    return output.astype(np.int64) if kind.startswith("labels") else output.argmax(1)


def compare_outputs(backend: str, ref: list[np.ndarray], got: list[np.ndarray], kind: str,
                    labels: list[np.ndarray] | None = None,
                    num_classes: int | None = None) -> Comparison:
    for r, g in zip(ref, got):
        if r.shape != g.shape:
            raise ParityError(f"{backend}: output shape {g.shape} differs from the reference's "
                              f"{r.shape}")
    diff = rel = mean_rel = sqnr = None
    if not kind.startswith("labels"):
        sqnr = sqnr_db(ref, got)
        d = [np.abs(r.astype(np.float64) - g) for r, g in zip(ref, got)]
        diff = float(max(x.max() for x in d))
        rel = diff / (float(max(np.abs(r).max() for r in ref)) or 1.0)
        mean_rel = float(np.mean([x.mean() for x in d])) / (
            float(np.mean([np.abs(r).mean() for r in ref])) or 1.0)
    ref_l = [to_labels(r, kind) for r in ref]
    got_l = [to_labels(g, kind) for g in got]
    agree = agreement(ref_l, got_l)
    miou_ref = miou_got = None
    if labels is not None and num_classes:
        cms = [ConfusionMatrix(num_classes), ConfusionMatrix(num_classes)]
        for lab, a, b in zip(labels, ref_l, got_l):
            if lab is None:  # an input without labels (the extra batch-of-two check)
                continue
            cms[0].update(a[0], lab)
            cms[1].update(b[0], lab)
        miou_ref, miou_got = (cm.metrics().miou for cm in cms)
    return Comparison(backend, len(ref), diff, rel, mean_rel, agree, miou_ref, miou_got, sqnr)


