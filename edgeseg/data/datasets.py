"""Segmentation datasets on disk: Cityscapes (and the synthetic scenes, which use its layout),
CamVid in SegNet's layout, and a generic folder / list-file format.

A dataset yields (HxWx3 uint8 RGB image, HxW uint8 train-id labels, 255 = ignore) and carries
its ClassSet. Problems are reported with the file and the fix, never turned into a silent
wrong mIoU: a missing mask, a size mismatch, labels outside the class set, an unreadable
image, an empty split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.core.errors import InputError
from edgeseg.data.classes import CAMVID, CITYSCAPES, IGNORE_INDEX, ClassSet

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
CLASS_FILES = ("classes.json", "classes.toml")

# Cityscapes labelIds -> trainIds (the 19 evaluated classes; everything else is ignored).
_CITYSCAPES_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                   24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


# Label lookup tables map stored ids to train ids; INVALID marks ids the format does not
# define, which are an error (a wrong file), not "ignore".
INVALID = -1


def cityscapes_label_lut() -> np.ndarray:
    lut = np.full(256, INVALID, np.int16)
    lut[:34] = IGNORE_INDEX  # ids 0..33 exist; those not evaluated are ignored
    for label_id, train_id in _CITYSCAPES_IDS.items():
        lut[label_id] = train_id
    return lut


def camvid_label_lut() -> np.ndarray:
    lut = np.full(256, INVALID, np.int16)
    lut[: CAMVID.num_classes] = np.arange(CAMVID.num_classes)
    lut[CAMVID.num_classes] = IGNORE_INDEX  # 11 = void
    lut[IGNORE_INDEX] = IGNORE_INDEX
    return lut


class DatasetError(InputError):
    """A dataset on disk is not what its format promises; the message names file and fix."""


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path


def read_image(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB; a DatasetError naming the file when it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (OSError, ValueError, SyntaxError) as e:  # what PIL raises for corrupt files
        raise DatasetError(f"{path}: cannot decode image ({e}); re-export or remove it") from None


def read_mask(path: Path) -> np.ndarray:
    """HxW uint8 label ids (a palette PNG's indices, or a greyscale PNG's values)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise DatasetError(
                    f"{path}: a label mask must be single-channel (mode L or P), got mode "
                    f"{im.mode}; colour-coded masks need converting to class ids first"
                )
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DatasetError(f"{path}: mask file not found") from None
    except DatasetError:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"{path}: cannot decode mask ({e}); re-export or remove it") from None
    if arr.dtype != np.uint8:
        if arr.max(initial=0) > 255:
            raise DatasetError(f"{path}: label values above 255 (max {arr.max()})")
        arr = arr.astype(np.uint8)
    return arr


class SegDataset:
    """Image/mask pairs with a class set; `label_luts` maps a mask's stored ids to train ids
    (one table for all samples, or one per sample)."""

    def __init__(self, samples: list[Sample], classes: ClassSet, *, name: str,
                 label_luts: np.ndarray | list[np.ndarray | None] | None = None) -> None:
        if not samples:
            raise DatasetError(f"{name}: no image/mask pairs found")
        self.samples = samples
        self.classes = classes
        self.name = name
        if label_luts is None or isinstance(label_luts, np.ndarray):
            label_luts = [label_luts] * len(samples)
        self.label_luts = label_luts

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, indices) -> SegDataset:
        """The samples at `indices`, in that order (a tuning or held-out part of a split)."""
        idx = list(indices)
        return SegDataset([self.samples[i] for i in idx], self.classes,
                          name=f"{self.name}[{len(idx)} of {len(self)}]",
                          label_luts=[self.label_luts[i] for i in idx])

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.samples[i]
        img, mask = read_image(s.image), read_mask(s.mask)
        if img.shape[:2] != mask.shape:
            raise DatasetError(
                f"{s.mask}: mask is {mask.shape[0]}x{mask.shape[1]} but its image {s.image.name} "
                f"is {img.shape[0]}x{img.shape[1]}; masks must match their image's size"
            )
        lut = self.label_luts[i]
        if lut is not None:
            mapped = lut[mask]
            if (mapped == INVALID).any():
                values = sorted(int(v) for v in np.unique(mask[mapped == INVALID]))[:10]
                raise DatasetError(f"{s.mask}: label ids {values} are not defined by the "
                                   f"{self.classes.name} format; wrong file or encoding?")
            mask = mapped.astype(np.uint8)
        bad = (mask >= self.classes.num_classes) & (mask != self.classes.ignore_index)
        if bad.any():
            values = sorted(int(v) for v in np.unique(mask[bad]))[:10]
            raise DatasetError(
                f"{s.mask}: label values {values} are outside the {self.classes.num_classes} "
                f"classes of '{self.classes.name}' (0..{self.classes.num_classes - 1}, "
                f"{self.classes.ignore_index} = ignore); wrong class file or label encoding?"
            )
        return img, mask


def _pair_up(images: list[Path], mask_for, name: str, skip_missing: bool) -> list[Sample]:
    samples, missing = [], []
    for img in images:
        mask = mask_for(img)
        (samples.append(Sample(img, mask)) if mask.is_file() else missing.append(mask))
    if missing and not skip_missing:
        shown = ", ".join(str(m) for m in missing[:3])
        raise DatasetError(
            f"{name}: {len(missing)} of {len(images)} images have no mask (expected e.g. "
            f"{shown}); add them, or pass --skip-missing (skip_missing=True) to leave "
            "those images out"
        )
    if missing:
        import warnings

        warnings.warn(f"{name}: skipped {len(missing)} images without a mask", stacklevel=3)
    return samples


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)


def _class_file(root: Path) -> Path | None:
    return next((root / f for f in CLASS_FILES if (root / f).is_file()), None)


def cityscapes(root: Path, split: str, *, skip_missing: bool = False) -> SegDataset:
    """`leftImg8bit/<split>/<city>/*_leftImg8bit.png` with `gtFine/<split>/<city>/
    *_gtFine_labelTrainIds.png` (preferred) or `*_gtFine_labelIds.png` (mapped to train
    ids). A `classes.json` at the root replaces the 19 Cityscapes classes (synthetic data)."""
    img_dir = root / "leftImg8bit" / split
    if not img_dir.is_dir():
        raise DatasetError(f"{root}: no {img_dir.relative_to(root)} directory for split {split!r}")
    images = [p for p in _list_images(img_dir) if p.name.endswith("_leftImg8bit.png")]
    if not images:
        raise DatasetError(f"{img_dir}: split {split!r} is empty (no *_leftImg8bit.png)")
    class_file = _class_file(root)
    classes = ClassSet.load(class_file) if class_file else CITYSCAPES
    gt_dir = root / "gtFine" / split

    def mask_path(img: Path, kind: str) -> Path:
        rel = img.relative_to(img_dir)
        return gt_dir / rel.parent / rel.name.replace("_leftImg8bit.png", f"_gtFine_{kind}.png")

    def best_mask(img: Path) -> Path:
        # Per image: train ids when present, else Cityscapes label ids (mapped below).
        train_ids = mask_path(img, "labelTrainIds")
        if train_ids.is_file() or class_file is not None:
            if class_file is not None and not train_ids.is_file() \
                    and mask_path(img, "labelIds").is_file():
                raise DatasetError(
                    f"{mask_path(img, 'labelIds')}: only Cityscapes labelIds, but "
                    f"{class_file.name} defines a custom class set; write *_labelTrainIds.png "
                    "masks with those classes' ids (or remove the class file)")
            return train_ids
        label_ids = mask_path(img, "labelIds")
        return label_ids if label_ids.is_file() else train_ids

    samples = _pair_up(images, best_mask, f"{root} [{split}]", skip_missing)
    lut = cityscapes_label_lut()
    luts = [lut if s.mask.name.endswith("_labelIds.png") else None for s in samples]
    return SegDataset(samples, classes, name=f"{root.name}/{split}", label_luts=luts)


def camvid(root: Path, split: str, *, skip_missing: bool = False) -> SegDataset:
    """SegNet's CamVid layout: `<split>/*.png` and `<split>annot/*.png` (ids 0..10, 11 =
    void, ignored)."""
    img_dir, ann_dir = root / split, root / f"{split}annot"
    if not img_dir.is_dir():
        raise DatasetError(f"{root}: no {split}/ directory for split {split!r}")
    images = _list_images(img_dir)
    if not images:
        raise DatasetError(f"{img_dir}: split {split!r} is empty")
    samples = _pair_up(images, lambda p: ann_dir / p.relative_to(img_dir), f"{root} [{split}]",
                       skip_missing)
    return SegDataset(samples, CAMVID, name=f"{root.name}/{split}",
                      label_luts=camvid_label_lut())


def folder(root: Path, split: str, *, skip_missing: bool = False) -> SegDataset:
    """A folder with `classes.json` (or .toml) and either a list file `<split>.txt` of
    "image mask" lines (paths relative to the root) or `images/<split>/` and `masks/<split>/`
    with the same relative names (the mask as .png)."""
    class_file = _class_file(root)
    if class_file is None:
        raise DatasetError(f"{root}: a folder dataset needs classes.json or classes.toml")
    classes = ClassSet.load(class_file)
    list_file = root / f"{split}.txt"
    if list_file.is_file():
        samples = []
        for n, line in enumerate(list_file.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DatasetError(f"{list_file}:{n}: expected 'image mask', got {line!r}")
            samples.append(Sample(root / parts[0], root / parts[1]))
        missing = [s for s in samples if not (s.mask.is_file() and s.image.is_file())]
        if missing and not skip_missing:
            first = missing[0].image if not missing[0].image.is_file() else missing[0].mask
            raise DatasetError(f"{list_file}: {len(missing)} of {len(samples)} listed pairs "
                               f"lack a file, e.g. {first}; fix the list, or pass "
                               "--skip-missing to leave them out")
        if missing:
            import warnings

            warnings.warn(f"{list_file}: skipped {len(missing)} listed pairs with a missing "
                          "file", stacklevel=2)
        samples = [s for s in samples if s not in missing]
        if not samples:
            raise DatasetError(f"{list_file}: split {split!r} is empty")
        return SegDataset(samples, classes, name=f"{root.name}/{split}")
    img_dir, mask_dir = root / "images" / split, root / "masks" / split
    if not img_dir.is_dir():
        raise DatasetError(f"{root}: neither {list_file.name} nor images/{split}/ exists")
    images = _list_images(img_dir)
    if not images:
        raise DatasetError(f"{img_dir}: split {split!r} is empty")
    samples = _pair_up(images, lambda p: (mask_dir / p.relative_to(img_dir)).with_suffix(".png"),
                       f"{root} [{split}]", skip_missing)
    return SegDataset(samples, classes, name=f"{root.name}/{split}")


FORMATS = {"cityscapes": cityscapes, "camvid": camvid, "folder": folder}


def detect_format(root: Path) -> str:
    if (root / "leftImg8bit").is_dir():
        return "cityscapes"
    if any((root / f"{s}annot").is_dir() for s in ("train", "val", "test")):
        return "camvid"
    if _class_file(root):
        return "folder"
    raise DatasetError(
        f"{root}: not a dataset edgeseg knows: expected leftImg8bit/ (Cityscapes layout), "
        "train/ + trainannot/ (CamVid), or classes.json with a list file or images/ + masks/ "
        "(folder); `edgeseg data synth --out DIR` writes a synthetic one"
    )


def open_dataset(root: str | Path, split: str, *, format: str = "auto",
                 skip_missing: bool = False) -> SegDataset:
    """Open `split` of the dataset at `root` (format detected unless given)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset directory does not exist")
    fmt = detect_format(root) if format == "auto" else format
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt](root, split, skip_missing=skip_missing)
