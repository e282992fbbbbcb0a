"""Artifacts for the runtime tests: a local (translation-equivariant) hand-built graph, as
stretch and letterbox artifacts, and tiny registry exports (PyTorch can rebuild those) with
the argmax in the graph and with logits."""

from __future__ import annotations

import pytest

SIZE = (32, 64)


@pytest.fixture(scope="session")
def classes():
    from edgeseg.data.classes import SYNTHETIC

    return SYNTHETIC


def _import(tmp_path_factory, classes, name, resize="stretch", size=SIZE, color="RGB"):
    from edgeseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from edgeseg.export.importer import import_onnx
    from tests.quant.conftest import seg_graph

    d = tmp_path_factory.mktemp(name)
    src = seg_graph(d / "seg.onnx", classes=classes.num_classes, h=size[0], w=size[1])
    return import_onnx(str(src), str(d / name), classes=classes, mean=IMAGENET_MEAN,
                       std=IMAGENET_STD, resize=resize, color=color, log=lambda m: None)


@pytest.fixture(scope="session")
def local_artifact(tmp_path_factory, classes):
    return _import(tmp_path_factory, classes, "stretch")


@pytest.fixture(scope="session")
def letterbox_artifact(tmp_path_factory, classes):
    return _import(tmp_path_factory, classes, "letterbox", resize="letterbox")


@pytest.fixture(scope="session")
def big_local_artifact(tmp_path_factory, classes):
    """The same graph at twice the size per side: the full-size reference for tiling."""
    return _import(tmp_path_factory, classes, "big", size=(2 * SIZE[0], 2 * SIZE[1]))


@pytest.fixture(scope="session")
def labels_artifact(tmp_path_factory):
    from edgeseg.export.exporter import ExportConfig, export

    out = tmp_path_factory.mktemp("labels") / "bisenetv2-labels"
    export(ExportConfig(out=str(out), model="bisenetv2", num_classes=8, size=SIZE,
                        output="labels", dynamic="batch", formats=("onnx", "openvino"),
                        parity_backends=("onnxruntime",), parity_inputs=1),
           log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def logits_artifact(tmp_path_factory):
    """An artifact every engine runs: a registry model (the torch runner rebuilds it), a
    dynamic batch (a dimension the runners must report as dynamic), ONNX and OpenVINO IR."""
    from edgeseg.export.exporter import ExportConfig, export

    out = tmp_path_factory.mktemp("logits") / "bisenetv2-logits"
    export(ExportConfig(out=str(out), model="bisenetv2", num_classes=8, size=SIZE,
                        output="logits", dynamic="batch", formats=("onnx", "openvino"),
                        parity_backends=("onnxruntime",), parity_inputs=1),
           log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def int8_artifacts(tmp_path_factory, local_artifact):
    """The local graph quantized for OpenVINO (symmetric S8) and ONNX Runtime (U8)."""
    from edgeseg.data.calibration import build
    from edgeseg.data.synthetic import write_dataset
    from edgeseg.quant.config import QuantConfig
    from edgeseg.quant.int8 import quantize

    root = tmp_path_factory.mktemp("int8")
    write_dataset(root / "synth", 40, SIZE, seed=0, progress=False)
    calib = build(root / "calib", size=SIZE, data=str(root / "synth"), num=32,
                  progress=False, log=lambda m: None)
    out = {}
    for target in ("openvino", "onnxruntime"):
        out[target] = root / target
        quantize(QuantConfig(artifact=str(local_artifact), calib=str(calib.root),
                             out=str(out[target]), target=target),
                 log=lambda m: None, progress=False)
    return out
