"""Training augmentation. The one preprocessing definition (`Preprocess`, used unchanged by
training, evaluation, calibration and both runtimes) lives in edgeseg/runtime/preprocess.py
and is re-exported here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeseg.core.preprocess import (  # noqa: F401  (the one definition, re-exported)
    IMAGENET_MEAN,
    IMAGENET_STD,
    RESIZE_POLICIES,
    Preprocess,
    _check_image,
    resize_array,
)


@dataclass(frozen=True)
class Augment:
    """Training augmentation: random scale, crop to the network size, flip, photometric
    jitter. Applied to the original image and labels before `Preprocess.normalize`."""

    size: tuple[int, int]
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    jitter: float = 0.3  # brightness / contrast / saturation amplitude
    keep_aspect: bool = False  # True to match the letterbox policy, False for stretch
    # Crop smaller than the network size (HxW): scale stays relative to `size`, so objects
    # keep the pixel size they have at inference, and each step costs crop/size as much.
    crop: tuple[int, int] | None = None

    def __call__(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 ignore_index: int = 255, fill: tuple[float, ...] = IMAGENET_MEAN
                 ) -> tuple[np.ndarray, np.ndarray]:
        th, tw = self.size
        h, w = labels.shape
        ch, cw = self.crop or self.size
        # Scale relative to the image as the resize policy fits it (letterbox: the whole
        # image inside the input; stretch: exactly the input), then crop.
        s = rng.uniform(*self.scale)
        if self.keep_aspect:
            fit = min(th / h, tw / w)
            fit_h, fit_w = h * fit, w * fit
        else:
            fit_h, fit_w = th, tw
        nh, nw = max(1, round(fit_h * s)), max(1, round(fit_w * s))
        image = resize_array(image, (nh, nw), nearest=False)
        labels = resize_array(labels, (nh, nw), nearest=True)
        ph, pw = max(0, th - nh), max(0, tw - nw)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
            image[nh:, :] = np.round(fill).astype(np.uint8)
            image[:, nw:] = np.round(fill).astype(np.uint8)
            labels = np.pad(labels, ((0, ph), (0, pw)), constant_values=ignore_index)
        y = rng.integers(0, image.shape[0] - ch + 1)
        x = rng.integers(0, image.shape[1] - cw + 1)
        image, labels = image[y:y + ch, x:x + cw], labels[y:y + ch, x:x + cw]
        if self.flip and rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        if self.jitter:
            image = _jitter(image, rng, self.jitter)
        return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def _jitter(image: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    x = image.astype(np.float32)
    x = x * rng.uniform(1 - amount, 1 + amount)  # brightness
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - amount, 1 + amount) + mean  # contrast
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * rng.uniform(1 - amount, 1 + amount) + grey  # saturation
    return np.clip(x, 0, 255).astype(np.uint8)
