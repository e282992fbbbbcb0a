"""ONNX Runtime backend (CPU execution provider unless told otherwise).

`int8_kernels=False` keeps ONNX Runtime from fusing Q/DQ patterns into its integer kernels
(session option session.disable_quant_qdq; other optimisations stay): a Q/DQ graph then
runs QuantizeLinear / DequantizeLinear and float ops exactly as the ONNX spec defines them
(the reference INT8 arithmetic, which TensorRT's exact int32 accumulation matches; outputs
identical to running with every optimisation off), instead of the fused kernels, which on
x86 CPUs without VNNI can saturate with full-range INT8 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.backends.common import (
    GraphIO,
    RunnerClosed,
    TensorSpec,
    load_failed,
    require_model_file,
    spec,
)
from edgeseg.core.devices import Device
from edgeseg.core.errors import UsageError

_DTYPES = {"float": np.float32, "float16": np.float16, "double": np.float64,
           "uint8": np.uint8, "int8": np.int8, "int32": np.int32, "int64": np.int64,
           "bool": np.bool_}


def _spec(arg) -> TensorSpec:
    kind = arg.type.removeprefix("tensor(").removesuffix(")")  # "tensor(float)"
    return spec(arg.shape, _DTYPES.get(kind, np.void))


class Runner(GraphIO):
    """`with Runner("model.onnx") as r: r.infer({"input": x})` -> {"logits": y}.

    One runner may be called from several threads at once: InferenceSession.run is
    thread-safe (ONNX Runtime's documented guarantee), and nothing else here changes per
    call."""

    def __init__(self, model_path: str | Path, *, threads: int | None = None,
                 providers: list[str] | None = None, output_names: list[str] | None = None,
                 int8_kernels: bool = True) -> None:
        # output_names: accepted for a uniform runner signature; ORT keeps the graph's names.
        self.model_path = Path(model_path)
        self.threads = threads
        self.providers = providers or ["CPUExecutionProvider"]
        self.int8_kernels = int8_kernels
        self.session = None

    def __enter__(self) -> Runner:
        import onnxruntime as ort

        require_model_file(self.model_path, "ONNX Runtime")
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
        if not self.int8_kernels:
            opts.add_session_config_entry("session.disable_quant_qdq", "1")
        try:
            session = ort.InferenceSession(str(self.model_path), opts, providers=self.providers)
        except Exception as e:  # ORT raises its own types (InvalidProtobuf, Fail, ...)
            raise load_failed(self.model_path, "ONNX Runtime", e) from e
        self.session = session
        self._inputs = {i.name: _spec(i) for i in session.get_inputs()}
        self._outputs = {o.name: _spec(o) for o in session.get_outputs()}
        return self

    def __exit__(self, *exc) -> None:
        self.session = None

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.session  # one read: a concurrent close cannot swap it mid-call
        if session is None:
            raise RunnerClosed("ONNX Runtime")
        names = list(self._outputs)
        return dict(zip(names, session.run(names, inputs)))


def device_options(device: Device) -> dict:
    """Runner options for a device of the one grammar (core/devices.py)."""
    if device.kind == "cpu":
        return {"providers": ["CPUExecutionProvider"]}
    if device.kind == "gpu":  # needs the onnxruntime-gpu package
        return {"providers": [("CUDAExecutionProvider", {"device_id": device.index or 0}),
                              "CPUExecutionProvider"]}
    raise UsageError(f"--device {device}: ONNX Runtime runs on cpu or gpu[:N]")
