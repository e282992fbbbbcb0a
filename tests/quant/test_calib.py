"""Calibration sets: stratified draws, content hashes, and refusals that write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgeseg.cli.main import main
from edgeseg.data.calibration import (
    MIN_IMAGES,
    CalibrationError,
    build,
    check_matches,
    load,
    stratified_indices,
)

SIZE = (48, 96)  # the conftest fixtures' size


def test_stratified_draw_reaches_rare_classes():
    # 200 images: class 0 everywhere, class 1 in 6 images, class 2 in 2 images.
    presence = np.zeros((200, 3), bool)
    presence[:, 0] = True
    presence[[3, 50, 90, 120, 150, 199], 1] = True
    presence[[7, 180], 2] = True
    picked = stratified_indices(presence, 24, seed=0)
    assert len(picked) == len(set(picked)) == 24
    # quota = 24 // (2 * 3) = 4: class 2 gets both of its images, class 1 four of six.
    assert presence[picked, 2].sum() == 2 and presence[picked, 1].sum() >= 4
    # A uniform draw of 24 would expect 0.24 images of class 2.
    assert stratified_indices(presence, 24, seed=0) == picked


def test_build_writes_a_hashed_set(calib_set, synth, tmp_path):
    m = calib_set.manifest
    assert m["images"] == len(calib_set) == 32 and m["size"] == list(SIZE)
    assert m["split"] == "train" and sum(m["class_images"].values()) > 0
    assert all(im.shape == (*SIZE, 3) and im.dtype == np.uint8 for im in calib_set.images())
    again = build(tmp_path / "again", size=SIZE, data=str(synth), num=32, progress=False,
                  log=lambda m: None)
    assert again.hash == calib_set.hash  # same draw, same content, same key
    other = build(tmp_path / "other", size=SIZE, data=str(synth), num=32, seed=1,
                  progress=False, log=lambda m: None)
    assert other.hash != calib_set.hash
    assert load(tmp_path / "again").hash == again.hash


def test_a_tampered_set_is_refused(calib_set, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(calib_set.root, copy)
    p = copy / "images" / "00003.png"
    arr = np.asarray(Image.open(p)).copy()
    arr[0, 0] ^= 1
    Image.fromarray(arr).save(p)
    with pytest.raises(CalibrationError, match="no longer match"):
        load(copy)


def test_wrong_geometry_is_refused(calib_set):
    with pytest.raises(CalibrationError, match="was built for 48x96 .stretch.*takes 96x192"):
        check_matches(calib_set, {"size": [96, 192], "resize": "stretch"})
    with pytest.raises(CalibrationError, match="letterbox"):
        check_matches(calib_set, {"size": list(SIZE), "resize": "letterbox"})


def test_wrong_channels_and_resized_images_are_refused(calib_set, tmp_path):
    import shutil

    # An artifact that takes 1-channel (or 4-channel) input cannot use RGB calibration images.
    for layout, shape in (("NCHW", [1, 1, *SIZE]), ("NHWC", [1, *SIZE, 4])):
        with pytest.raises(CalibrationError, match=r"takes \d-channel input.*3 channels"):
            check_matches(calib_set, {"size": list(SIZE), "resize": "stretch",
                                      "layout": layout, "shape": shape})
    check_matches(calib_set, {"size": list(SIZE), "resize": "stretch", "layout": "NHWC",
                              "shape": [1, *SIZE, 3]})  # a fused-preprocessing graph: fine
    # An image replaced by one of another size is named, before any hash is computed.
    copy = tmp_path / "copy"
    shutil.copytree(calib_set.root, copy)
    Image.new("RGB", (SIZE[1] * 2, SIZE[0] * 2)).save(copy / "images" / "00005.png")
    with pytest.raises(CalibrationError, match=r"00005.png: 96x192x3, but the set"):
        load(copy)


def test_list_source_resizes_odd_sizes(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(MIN_IMAGES):
        h, w = 30 + i, 70 + 2 * i
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
        lines.append(f"{i}.jpg")
    (tmp_path / "list.txt").write_text("# calibration frames\n" + "\n".join(lines) + "\n")
    cs = build(tmp_path / "set", size=SIZE, resize="letterbox",
               list_file=str(tmp_path / "list.txt"), num=500, progress=False, log=lambda m: None)
    assert len(cs) == MIN_IMAGES and cs.resize == "letterbox"
    assert {im.shape for im in cs.images()} == {(*SIZE, 3)}


@pytest.mark.parametrize("case, pattern", [
    ("tiny", f"at least {MIN_IMAGES} images"),
    ("unreadable", "cannot decode image"),
    ("empty-list", "names no images"),
    ("short-list", f"fewer than the minimum of {MIN_IMAGES}"),
])
def test_bad_sources_write_nothing(tmp_path, synth, capsys, case, pattern):
    out = tmp_path / "set"
    args = ["calib", "build", "--size", "48x96", "--out", str(out), "--no-progress"]
    if case == "tiny":
        args += ["--data", str(synth), "--num", "8"]
    else:
        names = []
        for i in range(MIN_IMAGES if case != "short-list" else 3):
            Image.new("RGB", (20, 10)).save(tmp_path / f"{i}.png")
            names.append(f"{i}.png")
        if case == "unreadable":
            (tmp_path / "5.png").write_bytes(b"not a png")
        (tmp_path / "l.txt").write_text("" if case == "empty-list" else "\n".join(names))
        args += ["--list", str(tmp_path / "l.txt")]
    assert main(args) == 2
    assert pattern in capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".set")]  # no partial dir


def test_cli_takes_geometry_from_the_artifact(fp32_artifact, synth, tmp_path):
    out = tmp_path / "c"
    assert main(["calib", "build", "--artifact", str(fp32_artifact), "--data", str(synth),
                 "--num", "32", "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "calibration.json").read_text())
    assert m["size"] == list(SIZE) and m["images"] == 32
