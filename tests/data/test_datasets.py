"""Dataset readers, and the errors that keep a broken dataset from giving a wrong mIoU."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgeseg.data.classes import CAMVID, CITYSCAPES, ClassSet
from edgeseg.data.datasets import DatasetError, open_dataset


def png(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path)


def rgb(h=8, w=12, v=0):
    return np.full((h, w, 3), v, np.uint8)


def make_cityscapes(root, label_ids, kind="labelIds"):
    png(root / "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png", rgb())
    png(root / f"gtFine/val/aachen/aachen_000000_000019_gtFine_{kind}.png", label_ids)


def test_cityscapes_label_ids_map_to_train_ids(tmp_path):
    ids = np.array([[7, 8, 11, 26, 0, 33, 1, 24, 23, 21, 17, 5]] * 8, np.uint8)
    make_cityscapes(tmp_path, ids)
    ds = open_dataset(tmp_path, "val")
    assert ds.classes == CITYSCAPES
    _, lab = ds[0]
    assert lab[0].tolist() == [0, 1, 2, 13, 255, 18, 255, 11, 10, 8, 5, 255]


def test_cityscapes_train_ids_used_as_is(tmp_path):
    make_cityscapes(tmp_path, np.full((8, 12), 18, np.uint8), kind="labelTrainIds")
    assert open_dataset(tmp_path, "val")[0][1].max() == 18


def test_camvid_void_is_ignored(tmp_path):
    png(tmp_path / "train/0001TP_006690.png", rgb())
    png(tmp_path / "trainannot/0001TP_006690.png", np.array([[0, 10, 11] * 4] * 8, np.uint8))
    ds = open_dataset(tmp_path, "train")
    assert ds.classes == CAMVID
    assert ds[0][1][0, :3].tolist() == [0, 10, 255]


def classes_json(root, n=3):
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps(
        {"name": "mine", "names": [f"c{i}" for i in range(n)],
         "palette": [[i, i, i] for i in range(n)]}))


def test_folder_list_file_and_toml_classes(tmp_path):
    (tmp_path / "classes.toml").write_text('names = ["bg", "fg"]\npalette = [[0,0,0],[9,9,9]]\n')
    png(tmp_path / "a.jpg", rgb())
    png(tmp_path / "a_mask.png", np.ones((8, 12), np.uint8))
    (tmp_path / "val.txt").write_text("# image mask\na.jpg a_mask.png\n")
    ds = open_dataset(tmp_path, "val")
    assert ds.classes.names == ("bg", "fg") and ds[0][1].max() == 1


def test_folder_dirs_and_palette_masks(tmp_path):
    classes_json(tmp_path)
    png(tmp_path / "images/train/x.jpg", rgb())
    from edgeseg.data.io import write_label_png

    (tmp_path / "masks/train").mkdir(parents=True)
    write_label_png(tmp_path / "masks/train/x.png", np.full((8, 12), 2, np.uint8), [[0, 0, 0]])
    assert open_dataset(tmp_path, "train")[0][1].max() == 2


def test_missing_masks_named_or_skipped(tmp_path):
    classes_json(tmp_path)
    for n in ("a", "b", "c"):
        png(tmp_path / f"images/train/{n}.png", rgb())
    png(tmp_path / "masks/train/a.png", np.zeros((8, 12), np.uint8))
    with pytest.raises(DatasetError, match=r"2 of 3 images have no mask.*masks/train/b.png"):
        open_dataset(tmp_path, "train")
    with pytest.warns(UserWarning, match="skipped 2 images"):
        ds = open_dataset(tmp_path, "train", skip_missing=True)
    assert len(ds) == 1


def test_labels_outside_the_class_set(tmp_path):
    classes_json(tmp_path, n=3)
    png(tmp_path / "images/val/a.png", rgb(8, 10))
    png(tmp_path / "masks/val/a.png", np.array([[0, 1, 7, 9, 255] * 2] * 8, np.uint8))
    with pytest.raises(DatasetError, match=r"a.png: label values \[7, 9\] are outside the 3"):
        open_dataset(tmp_path, "val")[0]


def test_size_mismatch_names_both_files(tmp_path):
    classes_json(tmp_path)
    png(tmp_path / "images/val/a.png", rgb(8, 12))
    png(tmp_path / "masks/val/a.png", np.zeros((8, 10), np.uint8))
    with pytest.raises(DatasetError, match=r"a.png: mask is 8x10 but its image a.png is 8x12"):
        open_dataset(tmp_path, "val")[0]


def test_corrupt_png_is_named(tmp_path):
    classes_json(tmp_path)
    (tmp_path / "images/val").mkdir(parents=True)
    (tmp_path / "images/val/a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    png(tmp_path / "masks/val/a.png", np.zeros((8, 12), np.uint8))
    with pytest.raises(DatasetError, match=r"images/val/a.png: cannot decode image"):
        open_dataset(tmp_path, "val")[0]


def test_colour_mask_is_refused(tmp_path):
    classes_json(tmp_path)
    png(tmp_path / "images/val/a.png", rgb())
    png(tmp_path / "masks/val/a.png", rgb())
    with pytest.raises(DatasetError, match=r"single-channel.*mode RGB"):
        open_dataset(tmp_path, "val")[0]


def test_empty_split_and_unknown_layout(tmp_path):
    (tmp_path / "leftImg8bit/val").mkdir(parents=True)
    with pytest.raises(DatasetError, match="split 'val' is empty"):
        open_dataset(tmp_path, "val")
    with pytest.raises(DatasetError, match="no leftImg8bit/train directory"):
        open_dataset(tmp_path, "train")
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(DatasetError, match="not a dataset edgeseg knows.*edgeseg data synth"):
        open_dataset(other, "val")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nope", "val")


def test_class_set_validation():
    with pytest.raises(ValueError, match="2 names but 1 palette"):
        ClassSet("x", ("a", "b"), ((0, 0, 0),))
    with pytest.raises(ValueError, match="repeats"):
        ClassSet("x", ("a", "a"), ((0, 0, 0),) * 2)
    with pytest.raises(ValueError, match="expected 'names'"):
        ClassSet.from_dict({"palette": []})


def test_cityscapes_mask_kind_is_chosen_per_image(tmp_path):
    """The first image having no mask, or images mixing labelIds and labelTrainIds, must not
    switch the whole split to one kind."""
    base = tmp_path / "gtFine/val/c"
    for i in range(3):
        png(tmp_path / f"leftImg8bit/val/c/c_{i}_leftImg8bit.png", rgb())
    png(base / "c_1_gtFine_labelIds.png", np.full((8, 12), 26, np.uint8))  # car
    png(base / "c_2_gtFine_labelTrainIds.png", np.full((8, 12), 13, np.uint8))  # car
    with pytest.raises(DatasetError, match=r"1 of 3 images have no mask.*c_0_gtFine"):
        open_dataset(tmp_path, "val")
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = open_dataset(tmp_path, "val", skip_missing=True)
    assert [ds[i][1].max() for i in range(len(ds))] == [13, 13]


def test_custom_classes_with_label_ids_only_is_explained(tmp_path):
    make_cityscapes(tmp_path, np.zeros((8, 12), np.uint8))
    classes_json(tmp_path)
    with pytest.raises(DatasetError, match=r"only Cityscapes labelIds.*classes.json"):
        open_dataset(tmp_path, "val")


def test_undefined_ids_are_errors_not_ignored(tmp_path):
    make_cityscapes(tmp_path / "cs", np.full((8, 12), 200, np.uint8))
    with pytest.raises(DatasetError, match=r"label ids \[200\] are not defined by the cityscapes"):
        open_dataset(tmp_path / "cs", "val")[0]
    png(tmp_path / "cv/val/a.png", rgb())
    png(tmp_path / "cv/valannot/a.png", np.full((8, 12), 42, np.uint8))
    with pytest.raises(DatasetError,
                       match=r"a.png: label ids \[42\] are not defined by the camvid"):
        open_dataset(tmp_path / "cv", "val")[0]


def test_list_file_missing_entries(tmp_path):
    classes_json(tmp_path)
    png(tmp_path / "a.png", rgb())
    png(tmp_path / "a_m.png", np.zeros((8, 12), np.uint8))
    (tmp_path / "val.txt").write_text("a.png a_m.png\nb.png b_m.png\n")
    with pytest.raises(DatasetError, match=r"1 of 2 listed pairs lack a file, e.g. .*b.png"):
        open_dataset(tmp_path, "val")
    with pytest.warns(UserWarning, match="skipped 1 listed pairs"):
        assert len(open_dataset(tmp_path, "val", skip_missing=True)) == 1
