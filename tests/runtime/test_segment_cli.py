"""`edgeseg segment`: palette PNGs whose pixel values are the Segmenter's class ids."""

from __future__ import annotations

import numpy as np
from PIL import Image

from edgeseg.cli.main import main


def test_segment_writes_palette_pngs(local_artifact, tmp_path, capsys):
    from edgeseg.runtime import Segmenter

    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    rgb = rng.integers(0, 256, (41, 77, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(src / "a.png")
    Image.fromarray(rgb[..., 0]).save(src / "gray.png")  # converted to RGB on read
    out = tmp_path / "out"
    assert main(["segment", str(local_artifact), str(src), "--out", str(out), "--overlay",
                 "--backend", "onnxruntime"]) == 0
    assert "with onnxruntime" in capsys.readouterr().err
    with Image.open(out / "a.png") as im:
        assert im.mode == "P" and im.size == (77, 41)
        ids = np.asarray(im)
        palette = np.asarray(im.getpalette()[:24]).reshape(8, 3)
    with Segmenter(local_artifact, backend="onnxruntime") as seg:
        assert np.array_equal(ids, seg.predict(rgb))
        assert palette.tolist() == seg.palette
    with Image.open(out / "a.overlay.png") as im:
        assert im.mode == "RGB" and im.size == (77, 41)
    assert (out / "gray.png").is_file()

    # existing outputs are kept unless --force
    before = (out / "a.png").read_bytes()
    assert main(["segment", str(local_artifact), str(src / "a.png"), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "a.png").read_bytes() == before


def test_segment_reports_bad_images_and_continues(local_artifact, tmp_path, capsys):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(good)
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    assert main(["segment", str(local_artifact), str(bad), str(good), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.png: cannot decode image" in err and "wrote 1 label map" in err
    assert (out / "good.png").is_file() and not (out / "bad.png").exists()
    assert not list(out.glob(".*partial*"))
    assert main(["segment", str(local_artifact), str(tmp_path / "nope.png"), "--out",
                 str(out)]) == 2
    assert "no such image" in capsys.readouterr().err


def test_segment_mirrors_a_folder_tree(local_artifact, tmp_path, capsys):
    from edgeseg.runtime import Segmenter

    rng = np.random.default_rng(1)
    val = tmp_path / "leftImg8bit" / "val"
    images = {}
    for city in ("frankfurt", "lindau"):
        (val / city).mkdir(parents=True)
        images[city] = rng.integers(0, 256, (20, 36, 3), dtype=np.uint8)
        Image.fromarray(images[city]).save(val / city / f"{city}_000000_leftImg8bit.png")
    out = val / "seg"  # inside the input tree: a second run must not read its outputs
    for extra in ([], ["--force"]):
        assert main(["segment", str(local_artifact), str(val), "--out", str(out),
                     "--backend", "onnxruntime", *extra]) == 0
        assert "2 image(s)" in capsys.readouterr().err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["frankfurt/frankfurt_000000_leftImg8bit.png",
                       "lindau/lindau_000000_leftImg8bit.png"]
    with Segmenter(local_artifact, backend="onnxruntime") as seg:
        with Image.open(out / "lindau" / "lindau_000000_leftImg8bit.png") as im:
            assert np.array_equal(np.asarray(im), seg.predict(images["lindau"]))
