"""OpenVINO backend (CPU). Inference precision is pinned to f32 by default: on CPUs with
AVX-512 BF16 OpenVINO otherwise runs FP32 models in bf16, which is not a parity check.

`int8_kernels=False` turns off OpenVINO's low-precision transformations, so a Q/DQ graph is
computed as written, in float (fake quantization). That checks how OpenVINO reads the
graph apart from its integer kernels, which on x86 CPUs without VNNI saturate their 16-bit
intermediate sums when weights use the full INT8 range (measured on an AVX2 host: a single
3x3 convolution off by up to a third of its output range)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Runner:
    """`with Runner("model.onnx" or "model.xml") as r: r.infer({"input": x})`."""

    def __init__(self, model_path: str | Path, *, device: str = "CPU",
                 precision: str | None = "f32", threads: int | None = None,
                 output_names: list[str] | None = None, int8_kernels: bool = True) -> None:
        self.model_path = Path(model_path)
        self.preferred = set(output_names or ())
        self.device = device
        self.precision = precision
        self.threads = threads
        self.int8_kernels = int8_kernels
        self.compiled = None

    def __enter__(self) -> Runner:
        import openvino as ov

        core = ov.Core()
        config = {}
        if self.precision:
            config["INFERENCE_PRECISION_HINT"] = self.precision
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        if not self.int8_kernels:
            config["LP_TRANSFORMS_MODE"] = "NO"  # the CPU plugin's switch for them
        try:
            model = core.read_model(str(self.model_path))
            self.compiled = core.compile_model(model, self.device, config)
        except RuntimeError as e:
            raise RuntimeError(f"{self.model_path}: OpenVINO cannot load it: {e}") from e
        self.request = self.compiled.create_infer_request()
        return self

    def __exit__(self, *exc) -> None:
        self.compiled = self.request = None

    @property
    def input_names(self) -> list[str]:
        return [_name(i) for i in self.compiled.inputs]

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.compiled is None:
            raise RuntimeError("use the Runner as a context manager: with Runner(path) as r")
        result = self.request.infer(inputs)
        return {_name(out, self.preferred): np.asarray(result[out])
                for out in self.compiled.outputs}


def _name(port, preferred: set[str] = frozenset()) -> str:
    """The graph-level name of a port. OpenVINO keeps every name a tensor had (the ONNX
    graph output's and internal ones such as '/net/Resize_output_0' or a converter's
    'graph_output_cast_0'): a name the caller expects wins, else one without a path."""
    names = sorted(port.get_names())
    hit = [n for n in names if n in preferred]
    plain = [n for n in names if "/" not in n]
    return (hit or plain or names or [port.get_any_name()])[0]
