"""`Segmenter`: what a Python application embeds. Everything it needs comes from the
artifact's meta.json; only numpy and the chosen engine are imported.

    from edgeseg.runtime import Segmenter
    with Segmenter("artifacts/bisenetv1-512x1024-int8") as seg:
        labels = seg.predict(frame)              # HxW uint8 class ids at the frame's size
        picture = seg.overlay(frame, labels)     # the frame with the classes blended over

One Segmenter may serve several threads at once: it keeps no per-call state, and each
engine's runner is safe to call concurrently (backends/<engine>/ says how).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner, model_file
from edgeseg.core.artifact import ArtifactError, read_meta
from edgeseg.core.capabilities import AUTO_ORDER, ENGINES, engine, is_available
from edgeseg.core.errors import EdgesegError, EngineUnavailable, UsageError
from edgeseg.core.frames import Pipeline, as_rgb
from edgeseg.core.memory import check_size
from edgeseg.core.shapes import dynamic_batch, size_range
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
    chosen = (meta.get("runtime") or {}).get("engine")
    if chosen in order:  # `edgeseg optimize` measured it fastest within the budget here
        order.remove(chosen)
        order.insert(0, chosen)
    skipped = []
    for name in order:
        file, why_not = usable(name)
        if file is not None:
            why = "first usable of " + ", ".join(order)
            if name == target and meta.get("precision") == "int8":
                why = f"the INT8 graph was calibrated for {target}"
            if name == chosen:
                why = "chosen by edgeseg optimize (meta.json runtime)"
            if skipped:
                why += " (skipped " + "; ".join(skipped) + ")"
            return name, file, why
        skipped.append(why_not)
    raise EngineUnavailable("no backend can run this artifact: " + "; ".join(skipped))


def runtime_precision(meta: dict, backend: str, requested: str | None,
                      device: str | None = None) -> str | None:
    """The inference precision hint for the runner: the one asked for (OpenVINO only), else
    the one `edgeseg optimize` recorded for this backend in meta.json's runtime, else None
    (the runner's own default: f32 for OpenVINO)."""
    if requested is not None:
        hints = ENGINES[backend].precision_hints
        if not hints:
            takes = [e.name for e in ENGINES.values() if e.precision_hints]
            raise UsageError(f"inference_precision={requested!r}: the backend {backend} has no "
                             f"such setting (ask for backend={' or '.join(takes)})")
        if requested not in hints:
            raise UsageError(f"inference_precision={requested!r}: {backend} takes "
                             f"{', '.join(hints)}")
        return requested
    runtime = meta.get("runtime") or {}
    # measured on a CPU: another device gets its plugin's own default
    if runtime.get("engine") == backend and str(device or "cpu").lower() == "cpu":
        return runtime.get("inference_precision")
    return None


def profile_limits(meta: dict, model_file: str) -> tuple[int | None, tuple | None]:
    """(the largest batch, the ((min_h, min_w), (max_h, max_w)) sizes) the engine file a
    Segmenter runs takes: a TensorRT build's optimisation profile (meta.json builds), each
    None where it sets no limit (ONNX Runtime and OpenVINO take what the graph takes)."""
    for build in meta.get("builds") or []:
        profile = (build.get("profile") or {}).get(meta["input"]["name"])
        if build.get("file") == model_file and profile:
            lo, _, hi = profile
            h, w = (1, 2) if meta["input"]["layout"] == "NHWC" else (2, 3)
            sizes = ((lo[h], lo[w]), (hi[h], hi[w])) if len(hi) == 4 else None
            return int(hi[0]), sizes
    return None, None


def engine_meta(meta: dict, sizes: tuple | None) -> dict:
    """meta.json with a dynamic-size graph's size range narrowed to an engine profile's."""
    rng = size_range(meta["input"])
    if rng is None or sizes is None:
        return meta
    lo = [max(a, b) for a, b in zip(rng[0], sizes[0])]
    hi = [min(a, b) for a, b in zip(rng[1], sizes[1])]
    if any(a > b for a, b in zip(lo, hi)):
        raise ArtifactError(f"the engine's optimisation profile ({sizes[0]} to {sizes[1]}) "
                            f"and the artifact's size range ({rng[0]} to {rng[1]}) share no "
                            "size; rebuild it with `edgeseg build` (--shapes within the range)")
    return {**meta, "input": {**meta["input"], "size_range": {"min": lo, "max": hi}}}


class Segmenter:
    """Semantic segmentation with an edgeseg artifact.

    backend: "auto" (TensorRT when it has an engine for this GPU, else OpenVINO, else ONNX
    Runtime; an INT8 graph's calibration target first), or a backend name. The choice and
    the reason are in `.backend` and `.backend_reason`.
    device: where to run, in the one device grammar of every edgeseg command: "cpu",
    "gpu" or "gpu:N" ("cuda:N" and OpenVINO's "GPU.N" too), "npu"; None: the engine's
    default (the CPU, or GPU 0 for TensorRT).
    color: the channel order of the frames you pass ("BGR" for OpenCV frames).
    verify: check every artifact file's sha256 against meta.json (a tampered or truncated
    file is refused before it is loaded).
    inference_precision: OpenVINO's INFERENCE_PRECISION_HINT (f32, bf16, f16) for the ops the
    graph leaves in float; None: what meta.json's runtime says (written by `edgeseg
    optimize`), else f32.
    runner_options: further keyword options of the engine's runner, e.g. {"streams": 2} for
    an OpenVINO model that serves two callers at once.
    """

    def __init__(self, artifact_dir: str | Path, backend: str = "auto", device: str | None = None,
                 *, color: str = "RGB", threads: int | None = None, verify: bool = True,
                 inference_precision: str | None = None,
                 runner_options: dict | None = None) -> None:

        self.directory = Path(artifact_dir)
        self.meta = read_meta(self.directory, verify=verify)
        if color not in ("RGB", "BGR"):
            raise UsageError(f"color must be 'RGB' or 'BGR', got {color!r}")
        self.color = color
        self.backend, self.model_file, self.backend_reason = choose_backend(self.meta, backend)
        #: the largest batch one run takes (a TensorRT engine's profile max), else None
        self.max_batch, profile_sizes = profile_limits(self.meta, self.model_file)
        # a TensorRT profile narrower than the size range: images are fitted into it
        self.pipeline = Pipeline(engine_meta(self.meta, profile_sizes))
        h, w = (self.pipeline.size_range or (None, self.input_size))[1]  # the largest
        check_size(h, w, what=f"{self.directory}: input", classes=self._score_channels,
                   in_itemsize=np.dtype(self.meta["input"]["dtype"]).itemsize,
                   out_itemsize=np.dtype(self.meta["output"]["dtype"]).itemsize,
                   fix="re-export the artifact at a smaller --size")
        self.input_name = self.meta["input"]["name"]
        self.inference_precision = runtime_precision(self.meta, self.backend,
                                                     inference_precision, device)
        options = {"precision": self.inference_precision} if self.inference_precision else {}
        options.update(runner_options or {})
        runner = get_runner(self.backend, self.directory / self.model_file, device=device,
                            threads=threads, **options)
        runner.__enter__()
        try:
            outputs = runner.outputs
            out = outputs.get(self.meta["output"]["name"]) or next(iter(outputs.values()))
            # Set once here, only read per call: a dynamic class axis is checked on outputs.
            self._classes_known = len(out.shape) == 4 and out.shape[1] is not None
            if self.pipeline.has_scores and self._classes_known:
                self._check_classes(out.shape[1])
        except BaseException:
            runner.__exit__(None, None, None)
            raise
        self._runner = runner

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
        """The graph's input size (a dynamic-size graph's nominal one: see run_size)."""
        return tuple(self.meta["input"]["size"])

    def run_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """The size an image of this size runs at: input_size, or for a dynamic-size graph
        (meta.json input.size_range) the image's own size brought into the range."""
        return self.pipeline.run_size(tuple(image_hw))

    @property
    def _score_channels(self) -> int:
        return self.pipeline.num_classes if self.pipeline.has_scores else 1

    # -- checks -------------------------------------------------------------------------
    def _check_classes(self, got: int) -> None:
        """The graph's class count against meta.json's (as the C++ runtime checks): with
        fewer, labels would index past the palette; with more, silently wrong names."""
        want = self.pipeline.num_classes
        if got != want:
            raise ArtifactError(f"{self.directory}: the graph outputs {got} class scores but "
                                f"meta.json says {want} classes; the artifact is inconsistent: "
                                "re-export it (or correct model.num_classes and the classes "
                                "in meta.json)")

    def _rgb(self, image, *, tiled: bool = False) -> np.ndarray:
        """as_rgb(image), after refusing an image whose scores at its own size (tiling pads
        it up to a window) cannot be allocated here. Checked before as_rgb, which copies a
        strided view."""
        shape = image.shape if isinstance(image, np.ndarray) else ()
        if len(shape) >= 2 and shape[0] > 0 and shape[1] > 0:  # as_rgb names the rest
            h, w = int(shape[0]), int(shape[1])
            if tiled:
                h, w = max(h, self.input_size[0]), max(w, self.input_size[1])
            check_size(h, w, what="image", classes=self._score_channels,
                       in_itemsize=1, out_itemsize=4 if self.pipeline.has_scores else 1,
                       fix="downscale it, or segment it in crops")
        return as_rgb(image, self.color)

    # -- inference ----------------------------------------------------------------------
    def _run(self, x: np.ndarray) -> np.ndarray:
        runner = self._runner  # one read: close() in another thread cannot swap it mid-call
        if runner is None:
            raise RuntimeError("this Segmenter is closed")
        y = self.pipeline.pick(runner.infer({self.input_name: x}))
        if not self._classes_known and self.pipeline.has_scores and y.ndim == 4:
            self._check_classes(y.shape[1])
        return y

    def predict(self, image: np.ndarray, *, tile: bool = False, overlap: float = 0.25
                ) -> np.ndarray:
        """HxW uint8 class ids for an HxWx3 uint8 image of any size. With `tile`, the image
        is cut into overlapping network-size windows run at full resolution (for images
        larger than the network input) instead of being resized to the input."""
        if tile:
            return self.tiled_scores(image, overlap).argmax(0).astype(np.uint8)
        return self._predict_rgb(self._rgb(image))

    def predict_batch(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Label maps for several images (any sizes); one batched run when the artifact has
        a dynamic batch (a dynamic-size graph: one per size the images run at; a TensorRT
        engine: runs of at most its profile's max batch, `max_batch`), else one run per
        image."""
        images = [self._rgb(im) for im in images]
        if not dynamic_batch(self.meta["input"]) or len(images) < 2:
            return [self._predict_rgb(im) for im in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(self.pipeline.run_size(im.shape[:2]), []).append(i)
        out: list = [None] * len(images)
        step = self.max_batch or len(images)
        for same_size in groups.values():
            for at in range(0, len(same_size), step):  # within an engine profile's max
                idx = same_size[at:at + step]
                y = self._run(np.concatenate([self.pipeline.prepare(images[i]) for i in idx]))
                for k, i in enumerate(idx):
                    out[i] = self.pipeline.finish(y[k], images[i].shape[:2])
        return out

    def _predict_rgb(self, image: np.ndarray) -> np.ndarray:
        return self.pipeline.finish(self._run(self.pipeline.prepare(image))[0],
                                    image.shape[:2])

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """C x H x W class probabilities at the image's size (artifacts that output logits
        or probabilities; not those with the argmax inside the graph)."""
        image = self._rgb(image)
        return self.pipeline.probabilities(self._run(self.pipeline.prepare(image))[0],
                                           image.shape[:2])

    def tiled_scores(self, image: np.ndarray, overlap: float = 0.25) -> np.ndarray:
        """C x H x W scores from overlapping network-size windows (see runtime.tiling)."""

        self.pipeline.require_scores()
        image = self._rgb(image, tiled=True)
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
        raise UsageError(f"every must be at least 1, got {every}")
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
