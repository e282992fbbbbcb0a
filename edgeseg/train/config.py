"""What a training run is: its configuration (TrainConfig), the learning-rate schedule, the
loss (cross-entropy or OHEM, class weights by median frequency) and the batches it draws.
The loop that uses them is edgeseg/train/__init__.py."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeseg.core.devices import parse_device
from edgeseg.core.errors import UsageError


@dataclass(frozen=True)
class TrainConfig:
    model: str
    data: str
    out: str
    size: tuple[int, int] = (128, 256)
    crop: tuple[int, int] | None = None  # train on crops of the size-scaled images
    model_options: dict[str, Any] = field(default_factory=dict)
    iters: int = 2000
    minutes: float | None = None  # wall-clock budget; sizes `iters` from the step time
    batch: int = 8
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup: int = 50
    poly_power: float = 0.9
    loss: str = "ce"  # ce | ohem
    class_weights: str = "none"  # none | median-freq (SegNet's median frequency balancing)
    ohem_thresh: float = 0.7
    val_every: int = 500
    val_limit: int | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    resize: str = "stretch"
    skip_missing: bool = False  # leave out images without a mask (with a warning)
    amp: str = "auto"  # auto: fp16 on CUDA, off on CPU | bf16 | off

    def __post_init__(self) -> None:
        checks = [
            (self.optimizer in ("sgd", "adamw"),
             f"optimizer must be sgd or adamw, got {self.optimizer!r}"),
            (self.loss in ("ce", "ohem"), f"loss must be ce or ohem, got {self.loss!r}"),
            (self.class_weights in ("none", "median-freq"),
             f"class_weights must be none or median-freq, got {self.class_weights!r}"),
            (self.iters >= 1 and self.batch >= 2, "need iters >= 1 and batch >= 2 (BatchNorm)"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (self.minutes is None or self.minutes > 0, "minutes must be positive"),
            (self.device == "auto" or parse_device(self.device).kind in ("cpu", "gpu"),
             f"device must be auto, cpu or gpu[:N], got {self.device!r}"),
            (self.amp in ("auto", "bf16", "off"),
             f"amp must be auto, bf16 or off, got {self.amp!r}"),
            (self.crop is None or (0 < self.crop[0] <= self.size[0]
                                   and 0 < self.crop[1] <= self.size[1]),
             f"crop {self.crop} must fit inside size {self.size} (HxW)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        if self.crop is not None:
            d["crop"] = list(self.crop)
        return d


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's own check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def poly_lr(cfg: TrainConfig, it: int, total: int) -> float:
    """Linear warm-up (at most a tenth of the schedule), then poly decay to 0 at `total`."""
    warmup = min(cfg.warmup, total // 10)
    if it < warmup:
        return cfg.lr * (it + 1) / warmup
    frac = min(1.0, (it - warmup) / max(1, total - warmup))
    return cfg.lr * (1 - frac) ** cfg.poly_power


def median_frequency_weights(dataset) -> np.ndarray:
    """Median frequency balancing (Eigen & Fergus 2015, SegNet's CamVid recipe): a class's
    frequency is its pixel count over the pixels of the images it appears in; its weight is
    the median frequency over its own, so rare classes (poles, people) weigh more than
    road and sky. Classes absent from every mask get weight 0 (they teach nothing)."""
    n, ignore = dataset.classes.num_classes, dataset.classes.ignore_index
    pixels, seen_in = np.zeros(n), np.zeros(n)
    for i in range(len(dataset)):
        lab = dataset[i][1]
        counts = np.bincount(lab[lab != ignore].ravel(), minlength=n)[:n]
        pixels += counts
        seen_in += (counts > 0) * lab.size
    present = pixels > 0
    if not present.any():
        raise UsageError("class weights: every training mask is empty (all ignore)")
    freq = np.where(present, pixels / np.maximum(seen_in, 1), 0.0)
    weights = np.where(present, np.median(freq[present]) / np.where(present, freq, 1), 0.0)
    return weights.astype(np.float32)


def seg_loss(logits, target, cfg: TrainConfig, ignore_index: int = 255, weight=None):
    """Cross-entropy, or OHEM: the pixels whose true-class probability is below
    `ohem_thresh`, and at least 1/16 of the valid pixels (the hardest). `weight` (one per
    class) scales each pixel's loss by its true class's weight; cross-entropy then
    normalises by the weights' sum, as torch does."""
    import torch
    import torch.nn.functional as F

    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear",
                               align_corners=False)
    if not (target != ignore_index).any():
        return logits.sum() * 0.0  # an all-ignore batch teaches nothing (CE would be NaN)
    if cfg.loss == "ce":
        return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    per_pixel = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                reduction="none")
    valid = target != ignore_index
    losses = per_pixel[valid]
    if losses.numel() == 0:
        return per_pixel.sum() * 0.0
    n_min = max(1, losses.numel() // 16)
    hard = losses[losses > -math.log(cfg.ohem_thresh)]
    if hard.numel() < n_min:
        hard = torch.topk(losses, n_min).values
    return hard.mean()


class TrainBatches:
    """An endless stream of augmented, normalised batches (main process: data loading is a
    few ms per image here, small against a CPU training step)."""

    def __init__(self, dataset, preprocess, augment, batch: int, seed: int) -> None:
        self.dataset, self.preprocess, self.augment = dataset, preprocess, augment
        self.batch, self.rng = batch, np.random.default_rng(seed)
        self.order: list[int] = []

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "order": list(self.order)}

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order = list(state["order"])

    def next(self):
        import torch

        xs, ys = [], []
        for _ in range(self.batch):
            if not self.order:
                self.order = self.rng.permutation(len(self.dataset)).tolist()
            img, lab = self.dataset[self.order.pop()]
            img, lab = self.augment(img, lab, self.rng, self.dataset.classes.ignore_index,
                                    self.preprocess.mean)
            xs.append(self.preprocess.normalize(img))
            ys.append(lab.astype(np.int64))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def boundary_target(target, ignore_index: int = 255):
    """(boundary, valid) for N x H x W labels: a pixel is a boundary pixel when its 3x3
    neighbourhood holds another class; pixels next to an ignored one are not judged."""
    import torch.nn.functional as F

    t = target[:, None].float()
    ignored = (target == ignore_index)[:, None].float()
    hi = F.max_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, 1)
    lo = -F.max_pool2d(F.pad(-t, (1, 1, 1, 1), mode="replicate"), 3, 1)
    near_ignore = F.max_pool2d(ignored, 3, 1, 1) > 0
    return (hi != lo)[:, 0], ~near_ignore[:, 0]


def boundary_loss(logits, target, ignore_index: int = 255):
    """A one-channel boundary head against the label map's class boundaries: binary
    cross-entropy weighted by the class balance (boundary pixels are few), plus Dice."""
    import torch
    import torch.nn.functional as F

    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear",
                               align_corners=False)
    edge, valid = boundary_target(target, ignore_index)
    x, y = logits[:, 0][valid], edge[valid].float()
    if y.numel() == 0:
        return logits.sum() * 0.0
    pos = y.sum()
    pos_weight = (y.numel() - pos) / pos.clamp(min=1.0)
    bce = F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight.detach())
    p = torch.sigmoid(x)
    dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    return bce + dice


def aux_loss(kind: str, logits, target, cfg: TrainConfig, ignore_index: int = 255,
             weight=None):
    """An auxiliary head's loss by its kind: "seg" (class logits, as the main output) or
    "boundary" (one channel, class boundaries)."""
    if kind == "boundary":
        return boundary_loss(logits, target, ignore_index)
    return seg_loss(logits, target, cfg, ignore_index, weight)
