"""Small data and artifacts for the quantization tests: synthetic scenes at 48x96 and
hand-built ONNX graphs imported as FP32 artifacts (no training, a few seconds)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

SIZE = (48, 96)


def save_graph(path, name, nodes, inits, classes, h, w):
    """The test graph `name`: image [1, 3, h, w] in, logits [1, classes, h, w] out."""
    g = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes, h, w])],
        initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def seg_graph(path, *, classes=8, h=SIZE[0], w=SIZE[1], padded_pool=True, seed=0):
    """Conv 3x3 (3->16) -> [AveragePool 3x3, stride 1, pad 1, counting the pad] -> Relu ->
    Conv 1x1 (16->classes). The pool reads the first conv's signed output, so asymmetric
    UINT8 quantization gives its input a non-zero zero point."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.4, (16, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.2, 16).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.5, (classes, 16, 1, 1)).astype(np.float32),
                                "w2"),
        numpy_helper.from_array(rng.normal(0, 0.2, classes).astype(np.float32), "b2"),
    ]
    nodes = [helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1",
                              pads=[1, 1, 1, 1])]
    feat = "c1"
    if padded_pool:
        nodes.append(helper.make_node("AveragePool", ["c1"], ["pooled"], name="pool",
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      count_include_pad=1))
        feat = "pooled"
    nodes += [helper.make_node("Relu", [feat], ["r"], name="relu"),
              helper.make_node("Conv", ["r", "w2", "b2"], ["logits"], name="conv2")]
    return save_graph(path, "seg", nodes, inits, classes, h, w)


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    from edgeseg.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("data") / "synth"
    write_dataset(root, 60, SIZE, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def classes(synth):
    from edgeseg.data.datasets import open_dataset

    return open_dataset(synth, "val").classes


def imported(tmp_path_factory, name: str, graph, classes):
    """`graph` (a function writing an ONNX file) imported as an FP32 artifact."""
    from edgeseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from edgeseg.export.importer import import_onnx

    d = tmp_path_factory.mktemp(name)
    src = graph(d / f"{name}.onnx", classes=classes.num_classes)
    return import_onnx(str(src), str(d / "fp32"), classes=classes, mean=IMAGENET_MEAN,
                       std=IMAGENET_STD, log=lambda m: None)


@pytest.fixture(scope="session")
def fp32_artifact(tmp_path_factory, classes):
    return imported(tmp_path_factory, "art", seg_graph, classes)


@pytest.fixture(scope="session")
def calib_set(tmp_path_factory, synth):
    from edgeseg.data.calibration import build

    return build(tmp_path_factory.mktemp("calib") / "set", size=SIZE, data=str(synth), num=32,
                 progress=False, log=lambda m: None)


def unpool_graph(path, *, classes=8, h=SIZE[0], w=SIZE[1], seed=1):
    """Conv 3x3 (3->8) -> Relu -> MaxPool 2x2 -> Resize x2 (nearest) -> Equal with the Relu
    output -> Where(mask, upsampled, 0) -> Conv 1x1 (8->classes): max-unpooling by
    comparing a tensor with its max-pooled copy, as SegNet does."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.5, (classes, 8, 1, 1)).astype(np.float32),
                                "w2"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.zeros((), np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("MaxPool", ["r1"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Resize", ["p", "", "scales"], ["u"], name="up", mode="nearest"),
        helper.make_node("Equal", ["r1", "u"], ["is_max"], name="eq"),
        helper.make_node("Where", ["is_max", "u", "zero"], ["unpooled"], name="where"),
        helper.make_node("Conv", ["unpooled", "w2"], ["logits"], name="conv2"),
    ]
    return save_graph(path, "unpool", nodes, inits, classes, h, w)


def residual_graph(path, *, classes=8, h=SIZE[0], w=SIZE[1], seed=2):
    """Conv 3x3 (3->8) -> c1; Conv 1x1 (8->8) -> c2; Add(c1, c2) -> s; Concat(s, c1) ->
    Conv 1x1 (16->classes): element-wise ops and a concatenation between convolutions."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(0, 0.4, shape).astype(np.float32), name)
             for name, shape in (("w1", (8, 3, 3, 3)), ("w2", (8, 8, 1, 1)),
                                 ("w3", (classes, 16, 1, 1)))]
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["c1", "c2"], ["s"], name="add"),
        helper.make_node("Concat", ["s", "c1"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["logits"], name="conv3"),
    ]
    return save_graph(path, "residual", nodes, inits, classes, h, w)


@pytest.fixture(scope="session")
def residual_artifact(tmp_path_factory, classes):
    return imported(tmp_path_factory, "residual", residual_graph, classes)


@pytest.fixture(scope="session")
def unpool_artifact(tmp_path_factory, classes):
    return imported(tmp_path_factory, "unpool", unpool_graph, classes)
