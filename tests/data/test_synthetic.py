from __future__ import annotations

import json

import numpy as np
import pytest

from edgeseg.data.classes import SYNTHETIC
from edgeseg.data.datasets import open_dataset
from edgeseg.data.synthetic import POLE, render_scene, write_dataset

SIZE = (128, 256)


@pytest.fixture(scope="module")
def scenes():
    return [render_scene(s, SIZE) for s in range(24)]


def test_deterministic_per_seed_and_size():
    a, b = render_scene(3, SIZE), render_scene(3, SIZE)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = render_scene(4, SIZE)
    assert not np.array_equal(a[0], c[0])


def test_shapes_types_and_label_values(scenes):
    for img, lab in scenes:
        assert img.shape == (*SIZE, 3) and img.dtype == np.uint8
        assert lab.shape == SIZE and lab.dtype == np.uint8
        values = set(np.unique(lab).tolist())
        assert values <= set(range(SYNTHETIC.num_classes)) | {255}


def test_every_class_appears_and_small_classes_are_small(scenes):
    counts = np.bincount(np.concatenate([lab.ravel() for _, lab in scenes]), minlength=256)
    frac = counts[: SYNTHETIC.num_classes] / counts[: SYNTHETIC.num_classes].sum()
    names = dict(zip(SYNTHETIC.names, frac))
    assert all(f > 0 for f in frac), names
    for big in ("road", "building", "sky"):
        for small in ("person", "pole"):
            assert names[big] > 8 * names[small], names
    assert counts[255] > 0  # some images carry an ignored ego-vehicle hood


def test_poles_are_a_few_pixels_wide(scenes):
    """Thin, but learnable: horizontal runs of pole pixels are mostly >= 2 px at 128x256."""
    runs = []
    for _, lab in scenes:
        for row in (lab == POLE):
            padded = np.concatenate([[0], row.astype(np.int8), [0]])
            edges = np.flatnonzero(np.diff(padded))
            runs += (edges[1::2] - edges[::2]).tolist()
    assert runs and np.median(runs) >= 2


def test_images_are_not_colour_coded(scenes):
    """A class is not a single colour: its pixels vary, and classes overlap in colour."""
    img = np.concatenate([i.reshape(-1, 3) for i, _ in scenes]).astype(float)
    lab = np.concatenate([la.ravel() for _, la in scenes])
    for c in range(SYNTHETIC.num_classes):
        assert img[lab == c].std(axis=0).mean() > 10


def test_write_dataset_layout_and_reload(tmp_path):
    out = write_dataset(tmp_path / "synth", 10, (64, 128), seed=5, val_fraction=0.2,
                        progress=False)
    assert json.loads((out / "classes.json").read_text())["names"] == list(SYNTHETIC.names)
    train, val = open_dataset(out, "train"), open_dataset(out, "val")
    assert (len(train), len(val)) == (8, 2)
    assert train.classes == SYNTHETIC
    img, lab = val[1]
    ref_img, ref_lab = render_scene(5 * 1_000_003 + 9, (64, 128))
    assert np.array_equal(img, ref_img) and np.array_equal(lab, ref_lab)
    names = sorted(p.name for p in (out / "gtFine" / "train" / "synth").iterdir())
    assert names[0] == "synth_000000_000000_gtFine_labelTrainIds.png"


def test_write_dataset_refuses_to_clobber(tmp_path):
    out = tmp_path / "synth"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty.*--force"):
        write_dataset(out, 4, (64, 64), progress=False)
    assert (out / "keep.txt").read_text() == "precious"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_val_split_never_takes_every_scene(tmp_path):
    out = write_dataset(tmp_path / "s", 2, (64, 64), val_fraction=0.9, progress=False)
    assert len(open_dataset(out, "train")) == 1 and len(open_dataset(out, "val")) == 1


@pytest.mark.parametrize("kwargs, pattern", [({"num": 1}, "at least 2"),
                                             ({"num": 4, "val_fraction": 1.0}, "val_fraction"),
                                             ({"num": 4, "seed": -1}, "seed must be >= 0")])
def test_write_dataset_bad_arguments(tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        write_dataset(tmp_path / "x", size=(64, 64), progress=False, **kwargs)


def test_sizes_that_cannot_fit_are_refused_before_drawing(tmp_path, monkeypatch):
    from edgeseg.core import memory
    from edgeseg.core.errors import UsageError

    with pytest.raises(UsageError, match=r"--size 100000x100000: .*over the 2,147,483,647"):
        write_dataset(tmp_path / "s", 4, (100_000, 100_000), progress=False)
    monkeypatch.setattr(memory, "available_memory", lambda: 100 << 20)
    with pytest.raises(UsageError, match=r"--size 4000x4000: .*more than the 100 MiB"):
        render_scene(0, (4000, 4000))
    assert not list(tmp_path.iterdir())  # not even a partial directory is left
