"""Calibration sets: N images at an artifact's input geometry, reusable and content-hashed.

A set is a directory:

    calibration.json   schema, size [H, W], resize policy, images, hash, sources,
                       per-class image counts (when drawn from a labelled dataset)
    images/00000.png   the images already resized by the policy (uint8 RGB)

Only the geometry (size and resize policy) is baked into the pixels; normalisation (mean,
std, channel order) is applied from the artifact being quantized, by the same
`Preprocess` that training, evaluation and the runtimes use, so it cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.core.artifact import read_schema_json
from edgeseg.core.errors import InputError
from edgeseg.core.memory import check_size
from edgeseg.core.progress import progress_bar
from edgeseg.data.datasets import DatasetError, open_dataset, read_image, read_mask
from edgeseg.data.io import atomic_output_dir, write_image_png
from edgeseg.data.transforms import Preprocess

SCHEMA = "edgeseg-calibration"
SCHEMA_VERSION = 1
MANIFEST = "calibration.json"
# Below this, per-tensor ranges (let alone entropy histograms) depend on which few images
# were drawn: the quantizer refuses smaller sets.
MIN_IMAGES = 32
DEFAULT_IMAGES = 256


class CalibrationError(InputError):
    """A calibration set that cannot be built, read or used for this artifact."""


@dataclass(frozen=True)
class CalibrationSet:
    root: Path
    manifest: dict

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.manifest["size"])

    @property
    def resize(self) -> str:
        return self.manifest["resize"]

    @property
    def hash(self) -> str:
        return self.manifest["hash"]

    def __len__(self) -> int:
        return self.manifest["images"]

    def paths(self) -> list[Path]:
        return [self.root / "images" / f"{i:05d}.png" for i in range(len(self))]

    def images(self) -> list[np.ndarray]:
        """The stored images, each checked against the size the manifest records."""

        out = []
        for p in self.paths():
            im = read_image(p)
            if im.shape != (*self.size, 3):
                raise CalibrationError(
                    f"{p}: {im.shape[0]}x{im.shape[1]}x{im.shape[2] if im.ndim == 3 else 1}, "
                    f"but the set {self.root} holds {self.size[0]}x{self.size[1]} RGB images; "
                    "rebuild it with `edgeseg calib build`")
            out.append(im)
        return out


def content_hash(images: Sequence[np.ndarray], size: tuple[int, int], resize: str) -> str:
    h = hashlib.sha256(f"{size[0]}x{size[1]}:{resize}:{len(images)}".encode())
    for im in images:
        h.update(np.ascontiguousarray(im).tobytes())
    return h.hexdigest()


def stratified_indices(presence: np.ndarray, num: int, seed: int) -> list[int]:
    """Pick `num` rows of an images x classes presence matrix so that rare classes appear:
    classes are visited rarest first, each drawing images that show it until it has its
    quota (half the set spread over the classes); the rest is drawn uniformly."""
    rng = np.random.default_rng(seed)
    n_images, n_classes = presence.shape
    num = min(num, n_images)
    chosen: list[int] = []
    taken = np.zeros(n_images, bool)
    quota = max(1, num // (2 * max(1, n_classes)))
    for c in np.argsort(presence.sum(0), kind="stable"):
        have = int(presence[taken, c].sum())
        pool = np.flatnonzero(presence[:, c] & ~taken)
        want = min(quota - have, len(pool), num - len(chosen))
        if want > 0:
            pick = rng.choice(pool, size=want, replace=False)
            taken[pick] = True
            chosen += [int(i) for i in pick]
    rest = np.flatnonzero(~taken)
    if num > len(chosen):
        chosen += [int(i) for i in rng.choice(rest, size=num - len(chosen), replace=False)]
    return sorted(chosen)


def _read_list(list_file: Path) -> list[Path]:
    if not list_file.is_file():
        raise CalibrationError(f"{list_file}: image list not found")
    base = list_file.parent
    paths = []
    for line in list_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line)
            paths.append(p if p.is_absolute() else base / p)
    if not paths:
        raise CalibrationError(f"{list_file}: the list names no images (one path per line)")
    return paths


def build(out: str | Path, *, size: tuple[int, int], resize: str = "stretch",
          data: str | None = None, list_file: str | None = None, split: str = "train",
          num: int = DEFAULT_IMAGES, seed: int = 0, overwrite: bool = False,
          progress: bool = True, log: Callable[[str], None] = print) -> CalibrationSet:
    """Draw `num` images from a dataset split (stratified by class presence) or from an image
    list (uniformly), resize them by the policy and write the set atomically."""
    if (data is None) == (list_file is None):
        raise CalibrationError("give exactly one source: --data DATASET_DIR or --list FILE")
    if num < MIN_IMAGES:
        raise CalibrationError(f"--num {num}: a calibration set needs at least {MIN_IMAGES} "
                               f"images (a few hundred is better; default {DEFAULT_IMAGES})")
    check_size(*size, in_itemsize=1, out_itemsize=0, fix="calibrate at the artifact's size")
    pre = Preprocess(size=tuple(size), resize=resize)
    class_counts = None
    if data is not None:
        sources, picked, class_counts, origin = _draw_from_dataset(data, split, num, seed,
                                                                   progress)
    else:
        sources, picked, origin = _draw_from_list(list_file, num, seed)
    if len(picked) < num:
        log(f"calibration: the source has {len(picked)} images, fewer than --num {num}; "
            "using all of them")
    images = _resized_images(sources, picked, pre, progress)
    manifest = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "size": list(pre.size), "resize": resize, "images": len(images),
        "hash": content_hash(images, pre.size, resize), "seed": seed, **origin,
        "class_images": class_counts,
        "sources": [str(sources[i]) for i in picked],
    }
    with atomic_output_dir(Path(out), overwrite=overwrite, flag="--force") as tmp:
        (tmp / "images").mkdir()
        for k, im in enumerate(images):
            write_image_png(tmp / "images" / f"{k:05d}.png", im)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"wrote calibration set {out}: {len(images)} images at {pre.size[0]}x{pre.size[1]} "
        f"({resize}), hash {manifest['hash'][:12]}")
    return CalibrationSet(Path(out), manifest)


def _draw_from_dataset(data: str, split: str, num: int, seed: int,
                       progress: bool) -> tuple[list[Path], list[int], dict, dict]:
    """(the split's images, the indices drawn, images per class among them, the manifest's
    origin fields)."""
    try:
        ds = open_dataset(data, split)
    except DatasetError as e:
        raise CalibrationError(f"{e}") from None
    sources = [s.image for s in ds.samples]
    if len(sources) < MIN_IMAGES:
        raise CalibrationError(f"{data} ({split}): {len(sources)} images, fewer than the "
                               f"minimum of {MIN_IMAGES}; add images or use another split")
    presence = _class_presence(ds, progress)
    picked = stratified_indices(presence, num, seed)
    counts = presence[picked].sum(0)
    class_counts = {name: int(c) for name, c in zip(ds.classes.names, counts)}
    origin = {"dataset": str(Path(data).resolve()), "split": split}
    return sources, picked, class_counts, origin


def _class_presence(ds, progress: bool) -> np.ndarray:
    """The images x classes matrix of which classes each image's mask shows."""
    n_cls = ds.classes.num_classes
    presence = np.zeros((len(ds), n_cls), bool)
    for i in progress_bar(range(len(ds)), desc="class presence", enable=progress,
                          unit="img"):
        try:
            mask = read_mask(ds.samples[i].mask)
        except DatasetError as e:
            raise CalibrationError(f"{e}") from None
        lut = ds.label_luts[i]
        if lut is not None:
            mask = lut[mask]
        ids = np.unique(mask)
        ids = ids[(ids >= 0) & (ids < n_cls)]
        presence[i, ids] = True
    return presence


def _draw_from_list(list_file: str, num: int, seed: int) -> tuple[list[Path], list[int], dict]:
    """(the list's images, the indices drawn uniformly, the manifest's origin fields)."""
    candidates = _read_list(Path(list_file))
    if len(candidates) < MIN_IMAGES:
        raise CalibrationError(f"{list_file}: {len(candidates)} images, fewer than the "
                               f"minimum of {MIN_IMAGES}")
    rng = np.random.default_rng(seed)
    picked = sorted(int(i) for i in rng.choice(len(candidates), min(num, len(candidates)),
                                                replace=False))
    return candidates, picked, {"list": str(Path(list_file).resolve())}


def _resized_images(sources: list[Path], picked: list[int], pre: Preprocess,
                    progress: bool) -> list[np.ndarray]:
    images = []
    for i in progress_bar(picked, desc="calibration images", enable=progress, unit="img"):
        try:
            images.append(pre.resize_image(read_image(sources[i])))
        except DatasetError as e:
            raise CalibrationError(f"{e}; remove it from the source or fix it") from None
    return images


def load(path: str | Path, *, verify: bool = True) -> CalibrationSet:
    """Open a set written by `build`; with `verify`, its pixels must still match its hash."""
    root = Path(path)
    mf = root / MANIFEST
    manifest = read_schema_json(
        mf, schema=SCHEMA, newest=SCHEMA_VERSION, error=CalibrationError,
        kind="an edgeseg calibration manifest",
        absent=f"{root}: not a calibration set (no {MANIFEST}); make one with `edgeseg calib "
               "build`")
    cs = CalibrationSet(root, manifest)
    if len(cs) < MIN_IMAGES:
        raise CalibrationError(f"{root}: {len(cs)} images, fewer than the minimum of "
                               f"{MIN_IMAGES}; rebuild it with --num {DEFAULT_IMAGES}")
    if verify:
        missing = [p.name for p in cs.paths() if not p.is_file()]
        if missing:
            raise CalibrationError(f"{root}: images missing ({', '.join(missing[:3])}...); "
                                   "rebuild the set")
        if content_hash(cs.images(), cs.size, cs.resize) != cs.hash:
            raise CalibrationError(f"{root}: the images no longer match the set's hash (edited "
                                   "after it was built); rebuild it with `edgeseg calib build`")
    return cs


def check_matches(cs: CalibrationSet, input_meta: dict) -> None:
    """Refuse a set whose geometry or channel count differs from the artifact's input."""
    layout, shape = input_meta.get("layout", "NCHW"), input_meta.get("shape") or []
    channels = shape[layout.index("C")] if len(shape) == 4 and "C" in layout else 3
    if channels != 3:
        raise CalibrationError(
            f"the artifact takes {channels}-channel input, but calibration sets hold RGB images "
            f"(3 channels); quantize an artifact exported for RGB frames, or calibrate it with "
            "its own tools")
    want = (tuple(input_meta["size"]), input_meta["resize"])
    if (cs.size, cs.resize) != want:
        raise CalibrationError(
            f"{cs.root} was built for {cs.size[0]}x{cs.size[1]} ({cs.resize}), but the artifact "
            f"takes {want[0][0]}x{want[0][1]} ({want[1]}); rebuild it for this artifact: "
            f"`edgeseg calib build --artifact ARTIFACT ...`")
