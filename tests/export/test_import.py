"""Bring your own ONNX: validation and the artifact it becomes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeseg.cli.main import main
from edgeseg.core.artifact import read_meta


def conv_model(path, classes=4, h=32, w=48, in_ch=3):
    weight = numpy_helper.from_array(
        np.random.default_rng(0).normal(size=(classes, in_ch, 1, 1)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["scores"])], "seg",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, in_ch, h, w])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, classes, h, w])],
        initializer=[weight])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_import_writes_a_checked_artifact(tmp_path, capsys):
    src = conv_model(tmp_path / "mine.onnx")
    assert main(["import", str(src), "--out", str(tmp_path / "art"), "--classes", "4",
                 "--color", "BGR", "--mean", "0", "0", "0", "--std", "255", "255", "255"]) == 0
    meta = read_meta(tmp_path / "art")
    assert meta["model"]["source"] == "import" and meta["input"]["name"] == "image"
    assert meta["input"]["size"] == [32, 48] and meta["input"]["color"] == "BGR"
    assert meta["output"] == {"name": "scores", "shape": [1, 4, 32, 48], "dtype": "float32",
                              "kind": "logits"}
    assert meta["parity"]["results"][0]["argmax_agreement"] > 0.999
    assert "agree on" in capsys.readouterr().err


@pytest.mark.parametrize("kw, pattern", [
    ({"classes": 5}, "outputs 4 classes but the class set"),
    ({"in_ch": 1}, "3 channels"),
])
def test_import_refuses_mismatches(tmp_path, capsys, kw, pattern):
    src = conv_model(tmp_path / "m.onnx", in_ch=kw.get("in_ch", 3))
    n = str(kw.get("classes", 4))
    assert main(["import", str(src), "--out", str(tmp_path / "art"), "--classes", n]) == 2
    assert pattern in capsys.readouterr().err
    assert not (tmp_path / "art").exists()


def test_import_corrupt_file(tmp_path, capsys):
    (tmp_path / "x.onnx").write_bytes(b"\x00garbage\xff")
    assert main(["import", str(tmp_path / "x.onnx"), "--out", str(tmp_path / "a"),
                 "--classes", "cityscapes"]) == 2
    assert "not an ONNX model" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "x.onnx"), "--out", str(tmp_path / "a"),
                 "--classes", "nonsense"]) == 2
    assert "--classes 'nonsense'" in capsys.readouterr().err
