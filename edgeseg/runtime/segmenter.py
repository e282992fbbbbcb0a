"""`Segmenter`: what a Python application embeds. Everything it needs comes from the
artifact's meta.json; only numpy and the chosen engine are imported.

    from edgeseg.runtime import Segmenter
    with Segmenter("artifacts/bisenetv1-512x1024-int8") as seg:
        labels = seg.predict(frame)              # HxW uint8 class ids at the frame's size
        picture = seg.overlay(frame, labels)     # the frame with the classes blended over
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner, model_file
from edgeseg.core.artifact import read_meta
from edgeseg.core.capabilities import AUTO_ORDER, ENGINES, engine, is_available
from edgeseg.core.errors import EdgesegError, EngineUnavailable
from edgeseg.core.frames import Pipeline, as_rgb
from edgeseg.runtime.overlay import colorize, overlay
from edgeseg.runtime.tiling import tiled_scores


def choose_backend(meta: dict, requested: str = "auto") -> tuple[str, str, str]:
    """(backend, model file in the artifact, why) for an artifact. `auto` tries AUTO_ORDER,
    an INT8 graph's calibration target first; a named backend must be usable or it is an
    error that says why."""
    def usable(name: str) -> tuple[str | None, str]:
        if not ENGINES[name].runtime:
            return None, f"{name}: not a runtime backend (choose one of {', '.join(AUTO_ORDER)})"
        if not is_available(name):
            return None, f"{name}: not installed ({ENGINES[name].install})"
        try:
            return model_file(meta, name), ""
        except EdgesegError as e:  # no file for it, or an engine built for another GPU
            return None, f"{name}: {e}"

    if requested != "auto":
        name = engine(requested).name
        file, why_not = usable(name)
        if file is None:
            raise EngineUnavailable(f"backend {why_not}")
        return name, file, "requested"
    order = list(AUTO_ORDER)
    target = (meta.get("calibration") or {}).get("target")
    if meta.get("precision") == "int8" and target in order:
        order.remove(target)
        order.insert(0, target)
    skipped = []
    for name in order:
        file, why_not = usable(name)
        if file is not None:
            why = "first usable of " + ", ".join(order)
            if name == target and meta.get("precision") == "int8":
                why = f"the INT8 graph was calibrated for {target}"
            if skipped:
                why += " (skipped " + "; ".join(skipped) + ")"
            return name, file, why
        skipped.append(why_not)
    raise EngineUnavailable("no backend can run this artifact: " + "; ".join(skipped))


class Segmenter:
    """Semantic segmentation with an edgeseg artifact.

    backend: "auto" (TensorRT when it has an engine for this GPU, else OpenVINO, else ONNX
    Runtime; an INT8 graph's calibration target first), or a backend name. The choice and
    the reason are in `.backend` and `.backend_reason`.
    device: OpenVINO device name ("CPU", "GPU"); for ONNX Runtime "cpu" or "cuda"; for
    TensorRT the GPU index.
    color: the channel order of the frames you pass ("BGR" for OpenCV frames).
    verify: check every artifact file's sha256 against meta.json (a tampered or truncated
    file is refused before it is loaded).
    """

    def __init__(self, artifact_dir: str | Path, backend: str = "auto", device: str | None = None,
                 *, color: str = "RGB", threads: int | None = None, verify: bool = True) -> None:

        self.directory = Path(artifact_dir)
        self.meta = read_meta(self.directory, verify=verify)
        self.pipeline = Pipeline(self.meta)
        if color not in ("RGB", "BGR"):
            raise ValueError(f"color must be 'RGB' or 'BGR', got {color!r}")
        self.color = color
        self.backend, self.model_file, self.backend_reason = choose_backend(self.meta, backend)
        options: dict = {"threads": threads}
        if self.backend == "tensorrt" and device:
            options["device"] = int(str(device).removeprefix("cuda:"))
        if self.backend == "openvino" and device:
            options["device"] = device.upper()
        if self.backend == "onnxruntime" and device and device.lower() != "cpu":
            if device.lower() != "cuda":
                raise ValueError(f"device {device!r}: ONNX Runtime takes 'cpu' or 'cuda'")
            options["providers"] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self._runner = get_runner(self.backend, self.directory / self.model_file, **options)
        self._runner.__enter__()
        self.input_name = self.meta["input"]["name"]

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        if self._runner is not None:
            self._runner.__exit__(None, None, None)
            self._runner = None

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Segmenter({str(self.directory)!r}, backend={self.backend!r} "
                f"[{self.backend_reason}], input={tuple(self.input_size)})")

    # -- what the artifact says ------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"]["names"])

    @property
    def palette(self) -> list[list[int]]:
        return [list(c) for c in self.meta["classes"]["palette"]]

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.meta["input"]["size"])

    # -- inference ----------------------------------------------------------------------
    def _run(self, x: np.ndarray) -> np.ndarray:
        if self._runner is None:
            raise RuntimeError("this Segmenter is closed")
        return self.pipeline.pick(self._runner.infer({self.input_name: x}))

    def predict(self, image: np.ndarray, *, tile: bool = False, overlap: float = 0.25
                ) -> np.ndarray:
        """HxW uint8 class ids for an HxWx3 uint8 image of any size. With `tile`, the image
        is cut into overlapping network-size windows run at full resolution (for images
        larger than the network input) instead of being resized to the input."""
        if tile:
            return self.tiled_scores(image, overlap).argmax(0).astype(np.uint8)
        return self._predict_rgb(as_rgb(image, self.color))

    def predict_batch(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Label maps for several images (any sizes); one batched run when the artifact has
        a dynamic batch, else one run per image."""
        images = [as_rgb(im, self.color) for im in images]
        if self.meta["input"].get("dynamic") != "batch" or len(images) < 2:
            return [self._predict_rgb(im) for im in images]
        y = self._run(np.concatenate([self.pipeline.prepare(im) for im in images]))
        return [self.pipeline.finish(y[i], im.shape[:2]) for i, im in enumerate(images)]

    def _predict_rgb(self, image: np.ndarray) -> np.ndarray:
        return self.pipeline.finish(self._run(self.pipeline.prepare(image))[0],
                                    image.shape[:2])

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """C x H x W class probabilities at the image's size (artifacts that output logits
        or probabilities; not those with the argmax inside the graph)."""
        image = as_rgb(image, self.color)
        return self.pipeline.probabilities(self._run(self.pipeline.prepare(image))[0],
                                           image.shape[:2])

    def tiled_scores(self, image: np.ndarray, overlap: float = 0.25) -> np.ndarray:
        """C x H x W scores from overlapping network-size windows (see runtime.tiling)."""

        image = as_rgb(image, self.color)
        self.pipeline.require_scores()
        pre = self.pipeline.preprocess
        pad = np.round(np.asarray(pre.mean)).astype(np.uint8)
        return tiled_scores(image, self.input_size, overlap,
                            lambda win: self.pipeline.scores(
                                self._run(self.pipeline.prepare(win))[0], win.shape[:2]),
                            pad)

    # -- pictures -----------------------------------------------------------------------
    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB picture of a label map in the artifact's palette."""
        return colorize(labels, self.palette)

    def overlay(self, image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """The image (RGB, or BGR when the Segmenter takes BGR) with the labels blended over
        it in the same channel order."""
        rgb = as_rgb(image, self.color)
        out = overlay(rgb, labels, self.palette, alpha)
        return out[..., ::-1].copy() if self.color == "BGR" else out


def frames(source: str | int | Path, every: int = 1) -> Iterator[np.ndarray]:
    """RGB frames (HxWx3 uint8) from a video file or a camera index, read with OpenCV
    (pip install opencv-python-headless); every `every`-th frame."""
    if importlib.util.find_spec("cv2") is None:
        raise ImportError("reading video needs OpenCV: pip install opencv-python-headless")
    import cv2

    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not cap.isOpened():
        raise OSError(f"{source}: OpenCV cannot open this video file or camera")
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            if i % every == 0:
                yield np.ascontiguousarray(frame[..., ::-1])
            i += 1
    finally:
        cap.release()
