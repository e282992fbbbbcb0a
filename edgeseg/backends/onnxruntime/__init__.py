"""ONNX Runtime backend (CPU execution provider unless told otherwise).

`int8_kernels=False` keeps ONNX Runtime from fusing Q/DQ patterns into its integer kernels
(session option session.disable_quant_qdq; other optimisations stay): a Q/DQ graph then
runs QuantizeLinear / DequantizeLinear and float ops exactly as the ONNX spec defines them
(the reference INT8 arithmetic, which TensorRT's exact int32 accumulation matches; outputs
identical to running with every optimisation off), instead of the fused kernels, which on
x86 CPUs without VNNI can saturate with full-range INT8 weights.

On the CUDA execution provider, `infer_timed` splits one call into copy in / compute / copy
out through an IO binding (input copied to the GPU, outputs left there by the run, then
copied back). ONNX Runtime offers no CUDA events, so each phase is a host timer around a call
that returns only once its GPU work is done: the copies are synchronous and a run
synchronises its stream before returning. Asked for CUDA, a runner whose session did not get
the CUDA provider (the CPU-only onnxruntime package, missing CUDA libraries) refuses to open
instead of timing the CPU fallback."""

from __future__ import annotations

import threading
import time
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
from edgeseg.core.errors import EngineUnavailable, UsageError

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
        # (device type, id) that infer_timed binds to: the CUDA provider's GPU, else None
        self._bind_to: tuple[str, int] | None = None
        self._binding = None  # (input shapes and dtypes, IOBinding, device inputs): reused
        self._lock = threading.Lock()  # infer_timed on CUDA shares the one binding

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
        self.ort = ort
        gpu = self._cuda_device(session)
        self._bind_to = None if gpu is None else ("cuda", gpu)
        self._binding = None
        self.session = session
        self._inputs = {i.name: _spec(i) for i in session.get_inputs()}
        self._outputs = {o.name: _spec(o) for o in session.get_outputs()}
        return self

    def _cuda_device(self, session) -> int | None:
        asked = [p for p in self.providers
                 if (p if isinstance(p, str) else p[0]) == "CUDAExecutionProvider"]
        if not asked:
            return None
        if "CUDAExecutionProvider" not in session.get_providers():
            raise EngineUnavailable(
                f"{self.model_path}: ONNX Runtime could not use its CUDA execution provider "
                f"(providers here: {', '.join(self.ort.get_available_providers())}): it needs "
                "the onnxruntime-gpu package and the CUDA and cuDNN libraries it was built for")
        options = asked[0][1] if not isinstance(asked[0], str) else {}
        return int(options.get("device_id", 0))

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.session = self._binding = None

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.session  # one read: a concurrent close cannot swap it mid-call
        if session is None:
            raise RunnerClosed("ONNX Runtime")
        names = list(self._outputs)
        return dict(zip(names, session.run(names, inputs)))

    def infer_timed(self, inputs: dict[str, np.ndarray]
                    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """(outputs, phase times in ms): copy_in / compute / copy_out on CUDA; on the CPU
        no phases (the caller times the call: there is no copy)."""
        if self._bind_to is None:
            return self.infer(inputs), {}
        with self._lock:
            if self.session is None:
                raise RunnerClosed("ONNX Runtime")
            return self._infer_bound(self.session, inputs)

    def _infer_bound(self, session, inputs: dict[str, np.ndarray]
                     ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        key = tuple((n, x.shape, x.dtype.str) for n, x in inputs.items())
        if self._binding is None or self._binding[0] != key:
            kind, index = self._bind_to
            new = self.ort.OrtValue.ortvalue_from_shape_and_type
            device = {n: new(x.shape, x.dtype, kind, index) for n, x in inputs.items()}
            binding = session.io_binding()
            for n, v in device.items():
                binding.bind_ortvalue_input(n, v)
            for n in self._outputs:
                binding.bind_output(n, kind, index)
            self._binding = (key, binding, device)
        _, binding, device = self._binding
        t0 = time.perf_counter()
        for n, x in inputs.items():
            device[n].update_inplace(np.ascontiguousarray(x))
        t1 = time.perf_counter()
        session.run_with_iobinding(binding)
        t2 = time.perf_counter()
        outs = binding.copy_outputs_to_cpu()
        t3 = time.perf_counter()
        return dict(zip(self._outputs, outs)), {
            "copy_in": (t1 - t0) * 1000.0, "compute": (t2 - t1) * 1000.0,
            "copy_out": (t3 - t2) * 1000.0}


def device_options(device: Device) -> dict:
    """Runner options for a device of the one grammar (core/devices.py)."""
    if device.kind == "cpu":
        return {"providers": ["CPUExecutionProvider"]}
    if device.kind == "gpu":  # needs the onnxruntime-gpu package
        return {"providers": [("CUDAExecutionProvider", {"device_id": device.index or 0}),
                              "CPUExecutionProvider"]}
    raise UsageError(f"--device {device}: ONNX Runtime runs on cpu or gpu[:N]")
