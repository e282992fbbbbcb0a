"""An artifact's pre- and postprocessing around any runner: image in, graph input out; graph
output in, label map or scores at the image's size out. numpy only. The Python Segmenter,
`edgeseg eval` and the benchmarks all go through this class; the C++ runtime implements the
same steps (cpp/src/segmenter.cpp)."""

from __future__ import annotations

import numpy as np

from edgeseg.core.errors import InputError, UsageError
from edgeseg.core.preprocess import Preprocess, graph_input, input_preprocess
from edgeseg.core.shapes import run_size, size_range

OUTPUT_KINDS = ("logits", "probs", "labels", "labels_lowres")


class ImageError(InputError):
    """An image the runtime cannot segment as given; the message says how to convert it."""


def as_rgb(image, color: str = "RGB") -> np.ndarray:
    """A contiguous HxWx3 uint8 RGB array from what a caller passed, or an ImageError.

    Documented conversions: a grayscale image (HxW or HxWx1) is repeated into three
    channels; a non-contiguous array (a crop, a flipped view) is copied; `color="BGR"`
    frames (OpenCV's order) are flipped to RGB. Everything else ambiguous is refused:
    4-channel images (RGBA or BGRA?), floats (0..1 or 0..255?), other integer types."""
    if not isinstance(image, np.ndarray):
        hint = " (a PIL image: np.asarray(im.convert('RGB')))" if hasattr(image, "convert") \
            else ""
        raise ImageError(f"expected a numpy array, got {type(image).__name__}{hint}")
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            fix = ("floats are ambiguous (0..1 or 0..255?): pass "
                   "np.clip(x * 255, 0, 255).round().astype(np.uint8) for 0..1 data")
        else:
            fix = "convert it to 8 bits per channel first (e.g. (x >> 8).astype(np.uint8) " \
                  "for 16-bit data)"
        raise ImageError(f"expected a uint8 image, got {image.dtype}: {fix}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)  # grayscale: the documented conversion
    if image.ndim != 3 or image.shape[2] != 3:
        if image.ndim == 3 and image.shape[2] == 4:
            raise ImageError("got a 4-channel image: drop the alpha channel first "
                             "(image[..., :3] for RGBA, or cv2.cvtColor(image, "
                             "cv2.COLOR_BGRA2RGB) for OpenCV's BGRA)")
        raise ImageError(f"expected an HxWx3 image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"the image is empty (shape {image.shape})")
    if color == "BGR":
        image = image[..., ::-1]
    elif color != "RGB":
        raise UsageError(f"color must be 'RGB' or 'BGR', got {color!r}")
    return np.ascontiguousarray(image)


class Pipeline:
    """Pre- and postprocessing of one artifact, from its meta.json (no runner inside)."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta
        self.input, self.output_meta = meta["input"], meta["output"]
        if self.output_meta["kind"] not in OUTPUT_KINDS:
            raise UsageError(f"unknown output kind {self.output_meta['kind']!r} in meta.json "
                             f"(known: {', '.join(OUTPUT_KINDS)})")
        self.preprocess = input_preprocess(self.input)  # at the nominal size
        self.size_range = size_range(self.input)  # None: every image runs at input.size
        self.num_classes = int(meta["model"]["num_classes"])
        if self.num_classes > 256:
            raise UsageError(f"{self.num_classes} classes do not fit uint8 label maps")

    @property
    def has_scores(self) -> bool:
        return not self.output_meta["kind"].startswith("labels")

    def require_scores(self) -> None:
        if not self.has_scores:
            raise UsageError(f"this artifact outputs {self.output_meta['kind']} (the argmax "
                             "is inside the graph), not scores; export it with --output "
                             "logits for probabilities or tiled inference")

    def run_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """The graph input size an image of this size runs at (core/shapes.py)."""
        return run_size(self.input, *image_hw)

    def for_image(self, image_hw: tuple[int, int]) -> Preprocess:
        """The preprocessing of an image of this size: the artifact's own, or for a
        dynamic-size graph the same steps at the size the image runs at."""
        if self.size_range is None:
            return self.preprocess
        size = self.run_size(image_hw)
        if size == self.preprocess.size:
            return self.preprocess
        return Preprocess(size=size, resize=self.preprocess.resize, color=self.preprocess.color,
                          mean=self.preprocess.mean, std=self.preprocess.std)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The graph input (a batch of one) for a decoded HxWx3 uint8 image."""
        return graph_input(self.input, self.for_image(image.shape[:2]).resize_image(image))

    def pick(self, out: dict[str, np.ndarray]) -> np.ndarray:
        """The model output among the runner's outputs."""
        return out[self.output_meta["name"]] if self.output_meta["name"] in out \
            else next(iter(out.values()))

    def finish(self, y: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        """One output item (scores CxHxW or labels HxW) to a label map at the image size."""
        if not self.has_scores:
            # Labels back to the image: crop the letterbox, nearest resize (one-hot would
            # cost C times the memory for the same answer).
            return self.for_image(image_hw).restore_labels(y, tuple(image_hw))
        return self.scores(y, image_hw).argmax(0).astype(np.uint8)

    def scores(self, y: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        """One score output item (C x H x W) at the image size, letterbox removed."""
        self.require_scores()
        return self.for_image(image_hw).restore(np.asarray(y, np.float32), tuple(image_hw))

    def probabilities(self, y: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        """Class probabilities C x H x W at the image size (softmax of logits)."""
        s = self.scores(y, image_hw)
        if self.output_meta["kind"] == "probs":
            return s
        return softmax(s)


def softmax(scores: np.ndarray, axis: int = 0) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e
