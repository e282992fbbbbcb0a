"""OpenVINO's model tools (the ONNX frontend, IR writer and NNCF), used by export/ and
quant/: this folder is the only place that imports openvino."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import numpy as np

from edgeseg.backends import require


def convert(onnx_path: Path, directory: Path, *, fp16: bool) -> None:
    """The ONNX graph as an OpenVINO IR, directory/model.xml + model.bin (the format's files
    in core/capabilities.FORMATS); FP16 weights with `fp16`."""
    require("openvino")
    import openvino as ov

    ov.save_model(ov.convert_model(str(onnx_path)), str(directory / "model.xml"),
                  compress_to_fp16=fp16)


def nncf_quantize(onnx_path: Path, xml_path: Path, inputs: list[np.ndarray], *,
                  progress: bool = True) -> None:
    """NNCF post-training quantization for CPUs (its PERFORMANCE preset: symmetric INT8
    activations), written as an INT8 IR with FP32 weights of the float ops. NNCF draws its
    progress bars on stdout: they go to stderr (stdout may carry a command's JSON), or
    nowhere without `progress`."""
    require("openvino")
    import nncf
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    with contextlib.redirect_stdout(sys.stderr if progress else io.StringIO()):
        quantized = nncf.quantize(model, nncf.Dataset(inputs),
                                  preset=nncf.QuantizationPreset.PERFORMANCE,
                                  target_device=nncf.TargetDevice.CPU, subset_size=len(inputs))
    ov.save_model(quantized, str(xml_path), compress_to_fp16=False)


def nncf_version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("nncf")
    except importlib.metadata.PackageNotFoundError:
        return None
