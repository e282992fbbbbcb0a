"""Artifacts for the Triton tests: a dynamic-batch registry export (ONNX and OpenVINO IR)
and a fixed-batch imported graph, both small."""

from __future__ import annotations

import pytest

SIZE = (32, 64)


@pytest.fixture(scope="session")
def dynamic_artifact(tmp_path_factory):
    from edgeseg.export.exporter import ExportConfig, export

    out = tmp_path_factory.mktemp("dyn") / "bisenetv2"
    export(ExportConfig(out=str(out), model="bisenetv2", num_classes=8, size=SIZE,
                        output="logits", dynamic="batch", formats=("onnx", "openvino"),
                        parity_backends=("onnxruntime",), parity_inputs=1),
           log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def fixed_artifact(tmp_path_factory):
    from edgeseg.data.classes import SYNTHETIC
    from edgeseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from edgeseg.export.importer import import_onnx
    from tests.quant.conftest import seg_graph

    d = tmp_path_factory.mktemp("fixed")
    src = seg_graph(d / "seg.onnx", classes=SYNTHETIC.num_classes, h=SIZE[0], w=SIZE[1])
    return import_onnx(str(src), str(d / "fixed"), classes=SYNTHETIC, mean=IMAGENET_MEAN,
                       std=IMAGENET_STD, resize="stretch", log=lambda m: None)
