"""Small artifacts for the benchmark tests: an imported hand-built graph labelled with the
synthetic classes (ONNX Runtime, OpenVINO, --val) and a tiny registry export (torch)."""

from __future__ import annotations

import pytest

SIZE = (32, 64)


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    from edgeseg.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("data") / "synth"
    write_dataset(root, 12, SIZE, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def imported(tmp_path_factory, synth):
    from edgeseg.data.datasets import open_dataset
    from edgeseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from edgeseg.export.importer import import_onnx
    from tests.quant.conftest import seg_graph

    classes = open_dataset(synth, "val").classes
    d = tmp_path_factory.mktemp("art")
    src = seg_graph(d / "seg.onnx", classes=classes.num_classes, h=SIZE[0], w=SIZE[1])
    return import_onnx(str(src), str(d / "fp32"), classes=classes, mean=IMAGENET_MEAN,
                       std=IMAGENET_STD, log=lambda m: None)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    from edgeseg.export.exporter import ExportConfig, export

    out = tmp_path_factory.mktemp("exp") / "icnet"
    export(ExportConfig(out=str(out), model="icnet", num_classes=8, size=SIZE,
                        formats=("onnx",), parity_backends=("onnxruntime",), parity_inputs=1),
           log=lambda m: None)
    return out
