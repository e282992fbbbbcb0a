"""One preprocessing, proven: the C++ runtime's example program and the Python Segmenter give
the same label map for the same artifact and image (FP32, letterbox, in-graph labels, INT8),
on odd sizes and a real photograph. Needs the C++ build (`make cpp`; `make test` does it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "cpp"


def _program(name: str) -> Path:
    hits = sorted(p for p in BUILD.rglob(name) if p.is_file()) if BUILD.is_dir() else []
    if not hits:
        pytest.skip(f"the C++ runtime is not built ({name} not under {BUILD}): run `make cpp`")
    return hits[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    import matplotlib

    d = tmp_path_factory.mktemp("cpp-images")
    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(photo) as im:
        rgb = np.asarray(im.convert("RGB"))
    rng = np.random.default_rng(0)
    smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (9, 13, 3), np.uint8))
                        .resize((173, 101), Image.BILINEAR))
    cases = {"photo-333x517": rgb[20:353, 0:517], "photo-97x131": rgb[300:397, 200:331],
             "photo-full": rgb, "smooth-101x173": smooth, "tiny-7x5": rgb[:7, :5]}
    paths = []
    for name, arr in cases.items():
        Image.fromarray(np.ascontiguousarray(arr)).save(d / f"{name}.png")
        paths.append(d / f"{name}.png")
    return paths


def _cpp_labels(artifact: Path, image: Path, out: Path) -> np.ndarray:
    run = subprocess.run([str(_program("edgeseg-segment")), str(artifact), str(image), str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with Image.open(out) as im:
        assert im.mode == "P"
        return np.asarray(im)


@pytest.mark.parametrize("which", ["stretch", "letterbox", "labels", "int8-openvino",
                                   "int8-onnxruntime"])
def test_cpp_and_python_give_the_same_labels(which, request, images, tmp_path):
    pytest.importorskip("openvino")
    from edgeseg.runtime import Segmenter

    artifact = {"stretch": "local_artifact", "letterbox": "letterbox_artifact",
                "labels": "labels_artifact"}.get(which)
    artifact = request.getfixturevalue(artifact) if artifact else \
        request.getfixturevalue("int8_artifacts")[which.split("-", 1)[1]]
    _program("edgeseg-segment")
    with Segmenter(artifact, backend="openvino") as seg:
        for image in images:
            with Image.open(image) as im:
                rgb = np.asarray(im.convert("RGB"))
            py = seg.predict(rgb)
            cpp = _cpp_labels(artifact, image, tmp_path / f"{image.stem}.png")
            assert cpp.shape == py.shape
            # Same engine, same preprocessing bytes: identical, not merely close.
            agree = (cpp == py).mean()
            assert np.array_equal(cpp, py), f"{which} {image.name}: {100 * agree:.3f}% agree"


def test_cpp_refuses_a_tampered_artifact(local_artifact, images, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(local_artifact, bad)
    with open(bad / "model.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x01\x02")
    run = subprocess.run([str(_program("edgeseg-segment")), str(bad), str(images[0]),
                          str(tmp_path / "out.png")], capture_output=True, text=True)
    assert run.returncode != 0 and "sha256" in run.stderr
    assert not (tmp_path / "out.png").exists()
