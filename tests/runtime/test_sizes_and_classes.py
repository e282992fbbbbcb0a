"""Refusals before anything runs or is allocated: an artifact whose graph has another class
count than its meta.json (as the C++ runtime refuses it), and sizes that cannot fit in
memory or in a tensor (core/memory.check_size, used by Segmenter and the synthetic data)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeseg.core import memory
from edgeseg.core.artifact import ArtifactError
from edgeseg.core.capabilities import ENGINES
from edgeseg.core.errors import UsageError
from edgeseg.core.memory import MAX_ELEMENTS, check_size
from edgeseg.runtime import Segmenter
from tests.backends import fake_tensorrt


def edited(src, dst, **changes):
    """A copy of artifact `src` with meta.json sections updated (meta.json is not hashed)."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    for section, values in changes.items():
        meta[section].update(values)
    (dst / "meta.json").write_text(json.dumps(meta))
    return dst


@pytest.mark.parametrize("engine", [n for n, e in ENGINES.items() if e.runtime])
def test_graph_class_count_must_match_meta(engine, local_artifact, tmp_path, monkeypatch):
    if engine == "tensorrt":
        from edgeseg.backends.tensorrt.builder import build
        from edgeseg.backends.tensorrt.plan import BuildConfig

        fake_tensorrt.install(monkeypatch)  # an engine with the graph's 8 classes
        src = tmp_path / "src"
        shutil.copytree(local_artifact, src)
        build(BuildConfig(artifact=str(src)), log=lambda m: None)
    else:
        pytest.importorskip(ENGINES[engine].module)
        src = local_artifact
    with Segmenter(src, backend=engine) as seg:  # the consistent artifact opens
        assert len(seg.classes) == 8
    bad = edited(src, tmp_path / "bad", model={"num_classes": 5})
    with pytest.raises(ArtifactError, match=r"bad: the graph outputs 8 class scores but "
                                            r"meta.json says 5 classes; .*re-export it"):
        Segmenter(bad, backend=engine)


def test_class_count_of_a_symbolic_output_is_checked_on_the_first_output(logits_artifact,
                                                                          tmp_path):
    # The exported graph declares its output N x ? x ? x ?: ONNX Runtime cannot tell the
    # class count before running it.
    bad = edited(logits_artifact, tmp_path / "bad", model={"num_classes": 19})
    with Segmenter(bad, backend="onnxruntime") as seg:
        assert seg._runner.outputs["logits"].shape[1] is None
        with pytest.raises(ArtifactError, match="graph outputs 8 class scores but meta.json "
                                                "says 19"):
            seg.predict(np.zeros((20, 30, 3), np.uint8))


def test_check_size_names_the_size_and_the_limit(monkeypatch):
    assert check_size(512, 1024, classes=19) == 512 * 1024 * (3 * 4 + 19 * 4)
    with pytest.raises(UsageError, match=r"--size 20000x20000: a 1x19x20000x20000 tensor has "
                                         r"7,600,000,000 elements, over the 2,147,483,647 "
                                         r"\(2\^31 - 1\).*choose a smaller size"):
        check_size(20000, 20000, classes=19)
    with pytest.raises(UsageError, match=r"--size 4000x4000: its input and output tensors "
                                         r"alone need 1.3 GiB, more than the 512 MiB of "
                                         r"memory available here; choose a smaller size"):
        check_size(4000, 4000, classes=19, available=512 << 20)
    with pytest.raises(UsageError, match="at least 1"):
        check_size(0, 64)
    monkeypatch.setattr(memory, "available_memory", lambda: 100 << 20)
    with pytest.raises(UsageError, match="more than the 100 MiB"):
        check_size(4000, 4000, classes=19, what="--size", batch=1)
    edge = {"channels": 1, "classes": 1, "in_itemsize": 0, "out_itemsize": 0}  # no memory
    assert check_size(1, MAX_ELEMENTS, **edge) == 0
    with pytest.raises(UsageError, match="2,147,483,648 elements"):
        check_size(1, MAX_ELEMENTS + 1, **edge)


def test_available_memory_is_measured():
    available = memory.available_memory()
    assert available is None or 0 < available < 1 << 50


def test_segmenter_refuses_an_input_size_that_cannot_fit(local_artifact, tmp_path,
                                                         monkeypatch):
    huge = edited(local_artifact, tmp_path / "huge", input={"size": [100_000, 100_000]})
    with pytest.raises(UsageError, match=r"huge: input 100000x100000: a 1x8x100000x100000 "
                                         r"tensor .*re-export the artifact at a smaller --size"):
        Segmenter(huge)
    monkeypatch.setattr(memory, "available_memory", lambda: 100 << 20)
    big = edited(local_artifact, tmp_path / "big", input={"size": [4000, 4000]})
    with pytest.raises(UsageError, match=r"input 4000x4000: .*more than the 100 MiB"):
        Segmenter(big)


def test_segmenter_refuses_an_image_before_allocating_for_it(local_artifact, monkeypatch):
    # A 60000 x 60000 view of one pixel: as_rgb would copy 10 GiB, the scores take 115 GiB.
    view = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (60_000, 60_000, 3))
    with Segmenter(local_artifact, backend="onnxruntime") as seg:
        for call in (seg.predict, seg.probabilities, seg.tiled_scores,
                     lambda im: seg.predict_batch([im])):
            with pytest.raises(UsageError, match=r"image 60000x60000: a 1x8x60000x60000 "
                                                 r"tensor .*downscale it"):
                call(view)
        monkeypatch.setattr(memory, "available_memory", lambda: 100 << 20)
        big = np.zeros((3000, 3000, 3), np.uint8)  # its 8 score planes: 275 MiB
        with pytest.raises(UsageError, match="image 3000x3000: .*more than the 100 MiB"):
            seg.predict(big)
        assert seg.predict(big[:100, :100]).shape == (100, 100)
