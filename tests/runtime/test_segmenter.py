"""The Python runtime: any image size in, a label map at that size out, by the same code path
as `edgeseg eval`; backends chosen and explained; bad artifacts refused before loading."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeseg.core.artifact import ArtifactError
from edgeseg.core.errors import EngineUnavailable, UsageError
from edgeseg.runtime import Segmenter, choose_backend


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    from edgeseg.core.preprocess import resize_array

    return resize_array(base, (75, 131), nearest=False)  # smooth, odd-sized


def test_predict_any_size_matches_the_eval_path(local_artifact, photo):
    from edgeseg.backends import get_runner
    from edgeseg.core.artifact import read_meta
    from edgeseg.evaluate import GraphPredictor

    meta = read_meta(local_artifact)
    with Segmenter(local_artifact, backend="onnxruntime") as seg, \
            get_runner("onnxruntime", local_artifact / "model.onnx") as runner:
        for image in (photo, photo[:17, :9], np.ascontiguousarray(photo[::-1])):
            labels = seg.predict(image)
            assert labels.shape == image.shape[:2] and labels.dtype == np.uint8
            assert np.array_equal(labels, GraphPredictor(runner, meta)(image))


def test_openvino_and_onnxruntime_agree(local_artifact, photo):
    pytest.importorskip("openvino")
    with Segmenter(local_artifact, backend="openvino") as ov, \
            Segmenter(local_artifact, backend="onnxruntime") as ort:
        assert ov.backend == "openvino" and ort.backend == "onnxruntime"
        assert (ov.predict(photo) == ort.predict(photo)).mean() >= 0.999


def test_letterbox_artifact(letterbox_artifact, photo):
    with Segmenter(letterbox_artifact, backend="onnxruntime") as seg:
        tall = np.ascontiguousarray(photo.transpose(1, 0, 2))
        for image in (photo, tall):
            p = seg.probabilities(image)
            assert p.shape[1:] == image.shape[:2]
            assert np.array_equal(p.argmax(0), seg.predict(image))


def test_probabilities_and_bgr_frames(local_artifact, photo):
    with Segmenter(local_artifact, backend="onnxruntime") as rgb, \
            Segmenter(local_artifact, backend="onnxruntime", color="BGR") as bgr:
        p = rgb.probabilities(photo)
        assert p.shape == (len(rgb.classes), *photo.shape[:2])
        np.testing.assert_allclose(p.sum(0), 1.0, rtol=1e-5)
        assert np.array_equal(p.argmax(0), rgb.predict(photo))
        assert np.array_equal(bgr.predict(photo[..., ::-1]), rgb.predict(photo))
        labels = rgb.predict(photo)
        assert rgb.colorize(labels).shape == (*photo.shape[:2], 3)
        over = bgr.overlay(photo[..., ::-1], labels, 0.0)  # alpha 0: the frame, still BGR
        assert np.array_equal(over, photo[..., ::-1])


def test_labels_artifact_batches_and_refuses_scores(labels_artifact, photo):
    with Segmenter(labels_artifact) as seg:
        images = [photo, photo[:40, :50], photo[5:, 7:]]
        one_by_one = [seg.predict(im) for im in images]
        batched = seg.predict_batch(images)
        assert all(np.array_equal(a, b) for a, b in zip(one_by_one, batched))
        with pytest.raises(ValueError, match="export it with --output logits"):
            seg.probabilities(photo)
        with pytest.raises(ValueError, match="tiled inference"):
            seg.predict(photo, tile=True)
    with pytest.raises(RuntimeError, match="closed"):
        seg.predict(photo)


def test_backend_choice_is_explained(local_artifact):
    from edgeseg.backends import is_available
    from edgeseg.core.artifact import read_meta

    meta = read_meta(local_artifact)
    name, file, why = choose_backend(meta)
    assert name in ("openvino", "onnxruntime") and file == "model.onnx"
    assert "tensorrt" in why  # says what it skipped and why
    int8 = {**meta, "precision": "int8", "calibration": {"target": "onnxruntime"}}
    assert choose_backend(int8)[0] == "onnxruntime"
    assert "calibrated for onnxruntime" in choose_backend(int8)[2]
    if not is_available("tensorrt"):
        with pytest.raises(EngineUnavailable, match="tensorrt: not installed .on Jetson .*JetPack"):
            choose_backend(meta, "tensorrt")
    with pytest.raises(UsageError, match="unknown engine 'coreml'; choose one of tensorrt"):
        choose_backend(meta, "coreml")
    with pytest.raises(EngineUnavailable, match="torch: not a runtime backend"):
        choose_backend(meta, "pytorch")
    assert choose_backend(meta, "ORT")[:2] == ("onnxruntime", "model.onnx")  # aliases, any case


def test_tampered_or_missing_files_are_refused(local_artifact, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(local_artifact, bad)
    with open(bad / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        Segmenter(bad)
    (bad / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        Segmenter(bad)
    with pytest.raises(ArtifactError, match="not found"):
        Segmenter(tmp_path / "nowhere")
    meta = json.loads((local_artifact / "meta.json").read_text())
    meta["output"]["kind"] = "heatmap"
    odd = tmp_path / "odd"
    shutil.copytree(local_artifact, odd)
    (odd / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown output kind"):
        Segmenter(odd)


def test_python_memory_stays_flat(local_artifact, photo):
    """Python-level allocations do not grow with the number of calls (the 10,000-run RSS
    measurement is benchmarks/runtime_memory.py)."""
    import tracemalloc

    with Segmenter(local_artifact, backend="onnxruntime") as seg:
        for _ in range(20):
            seg.predict(photo)
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(200):
            seg.predict(photo)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 256 * 1024, f"{grown} bytes more after 200 calls"
