"""The one preprocessing definition, and training augmentation.

`Preprocess` is used unchanged by training, evaluation, calibration and the runtimes (the C++
runtime reads the same fields from `meta.json`): resize to the network input (`stretch`, or
`letterbox` that keeps the aspect ratio and pads with the mean colour), then (x - mean) / std
with mean and std in 0..255 units and in RGB order, then the channel order the network wants
(`color="BGR"` flips the normalised channels). `restore` maps a network-resolution label map
or score map back to the original image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
RESIZE_POLICIES = ("stretch", "letterbox")


def resize_array(arr: np.ndarray, size_hw: tuple[int, int], nearest: bool) -> np.ndarray:
    from PIL import Image

    h, w = size_hw
    if arr.shape[:2] == (h, w):
        return arr
    im = Image.fromarray(arr)
    return np.asarray(im.resize((w, h), Image.NEAREST if nearest else Image.BILINEAR))


@dataclass(frozen=True)
class Preprocess:
    size: tuple[int, int]  # network input H, W
    resize: str = "stretch"
    color: str = "RGB"  # channel order the network expects
    mean: tuple[float, float, float] = IMAGENET_MEAN  # RGB order, 0..255
    std: tuple[float, float, float] = IMAGENET_STD  # RGB order, 0..255

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize must be one of {RESIZE_POLICIES}, got {self.resize!r}")
        if self.color not in ("RGB", "BGR"):
            raise ValueError(f"color must be RGB or BGR, got {self.color!r}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (H, W) with positive sides, got {self.size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values each, std positive")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(size=tuple(d["size"]), resize=d.get("resize", "stretch"),
                   color=d.get("color", "RGB"), mean=tuple(d["mean"]), std=tuple(d["std"]))

    def geometry(self, h: int, w: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(resized H, W) of the image content and its (top, left) offset in the input."""
        th, tw = self.size
        if self.resize == "stretch":
            return (th, tw), (0, 0)
        scale = min(th / h, tw / w)
        rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
        return (rh, rw), ((th - rh) // 2, (tw - rw) // 2)

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB -> network-size uint8 RGB (letterbox padded with the mean)."""
        _check_image(image)
        (rh, rw), (top, left) = self.geometry(*image.shape[:2])
        resized = resize_array(image, (rh, rw), nearest=False)
        if self.resize == "stretch":
            return resized
        canvas = np.empty((*self.size, 3), np.uint8)
        canvas[:] = np.round(self.mean).astype(np.uint8)
        canvas[top:top + rh, left:left + rw] = resized
        return canvas

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """Network-size uint8 RGB HxWx3 -> float32 3xHxW, channel order and mean/std applied."""
        x = image.astype(np.float32)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.color == "BGR":
            x = x[..., ::-1]
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.normalize(self.resize_image(image))

    def resize_labels(self, labels: np.ndarray, ignore_index: int = 255) -> np.ndarray:
        """Labels to the network size with the image's geometry (nearest; padding ignored)."""
        (rh, rw), (top, left) = self.geometry(*labels.shape[:2])
        resized = resize_array(labels, (rh, rw), nearest=True)
        if self.resize == "stretch":
            return resized
        canvas = np.full(self.size, ignore_index, labels.dtype)
        canvas[top:top + rh, left:left + rw] = resized
        return canvas

    def restore(self, scores: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
        """Map a network-size C x H x W score map back to C x h x w of the original image
        (letterbox padding cropped, then bilinear resize)."""
        import torch
        import torch.nn.functional as F

        (rh, rw), (top, left) = self.geometry(*orig_hw)
        cropped = scores[..., top:top + rh, left:left + rw]
        if cropped.shape[-2:] == tuple(orig_hw):
            return cropped
        t = torch.as_tensor(np.ascontiguousarray(cropped))[None]
        return F.interpolate(t, size=orig_hw, mode="bilinear", align_corners=False)[0].numpy()


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an HxWx3 RGB image array, got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (0..255), got {image.dtype}")


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
