"""OpenVINO backend (CPU). Inference precision is pinned to f32 by default: on CPUs with
AVX-512 BF16 OpenVINO otherwise runs FP32 models in bf16, which is not a parity check.

`int8_kernels=False` turns off OpenVINO's low-precision transformations, so a Q/DQ graph is
computed as written, in float (fake quantization). That checks how OpenVINO reads the
graph apart from its integer kernels, which on x86 CPUs without VNNI saturate their 16-bit
intermediate sums when weights use the full INT8 range (measured on an AVX2 host: a single
3x3 convolution off by up to a third of its output range)."""

from __future__ import annotations

import queue
import threading
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


class Runner(GraphIO):
    """`with Runner("model.onnx" or "model.xml") as r: r.infer({"input": x})`.

    Safe to call from several threads at once. An InferRequest runs one inference at a time
    (a second caller gets "Infer Request is busy", or reads outputs the first call is still
    writing), so each call borrows an idle request from a pool and a new one is made only
    when every request is busy: as many requests as concurrent callers, scheduled by the
    plugin onto its streams. Outputs are copied out before the request goes back.

    A model with dynamic dimensions (a dynamic batch, or batch, height and width) is compiled
    once per input shape it is called with, reshaped to that static shape (batch 1 at load
    for a dynamic batch; a dynamic height/width compiles the dynamic model at load, which
    checks the file, and each shape at its first call): the CPU plugin runs a
    dynamic-shaped graph much slower (measured on BiSeNetV1 INT8 at 512x1024, 2 threads,
    avx512_vnni/avx512_bf16/AMX host: 25.5 frames/s at batch 1 against 42.0 for the same
    graph exported with a fixed batch). The MAX_SHAPES most recently used are kept; a stream
    of ever-new sizes pays a compilation for each (Segmenter keeps a camera's frames at one
    size)."""

    def __init__(self, model_path: str | Path, *, device: str = "CPU",
                 precision: str | None = "f32", threads: int | None = None,
                 output_names: list[str] | None = None, int8_kernels: bool = True,
                 streams: int | None = None) -> None:
        self.model_path = Path(model_path)
        self.streams = streams  # NUM_STREAMS: requests that run at once (threads split)
        self.preferred = set(output_names or ())
        self.device = device
        self.precision = precision
        self.threads = threads
        self.int8_kernels = int8_kernels
        self.compiled = None
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        # a dynamic model's static compilations by input shape, least recently used first
        self._by_shape: dict[tuple, tuple] = {}  # read and reordered under _lock
        self._lock = threading.Lock()

    def __enter__(self) -> Runner:
        import openvino as ov

        require_model_file(self.model_path, "OpenVINO")
        core = ov.Core()
        self._core = core
        config = {}
        if self.precision:
            config["INFERENCE_PRECISION_HINT"] = self.precision
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        if self.streams:
            config["NUM_STREAMS"] = self.streams
        if not self.int8_kernels:
            config["LP_TRANSFORMS_MODE"] = "NO"  # the CPU plugin's switch for them
        self._config = config
        try:
            model = core.read_model(str(self.model_path))
            self._dynamic = _dynamic_inputs(model)
            self._model = model
            first = _first_shape(model) if self._dynamic else None
            compiled = (self._compile_shape(first) if first
                        else core.compile_model(model, self.device, config))
        except Exception as e:  # RuntimeError for bad files; frontends raise their own
            raise load_failed(self.model_path, "OpenVINO", e) from e
        # the graph's own I/O (a dynamic batch stays None), and output ports by position
        self._inputs = {_name(p): _spec(p) for p in model.inputs}
        self._outputs = {_name(p, self.preferred): (i, _spec(p))
                         for i, p in enumerate(model.outputs)}
        self._idle = queue.SimpleQueue()
        self._idle.put(compiled.create_infer_request())
        self.compiled = compiled
        self._by_shape = {first: (compiled, self._idle)} if first else {}
        return self

    def _compile_shape(self, shapes: tuple):
        """The model compiled for one static shape per input (`shapes`, in input order)."""
        model = self._model.clone()
        model.reshape({p.get_any_name(): list(shape) for p, shape in zip(model.inputs, shapes)})
        return self._core.compile_model(model, self.device, self._config)

    def __exit__(self, *exc) -> None:
        self.compiled = None
        self._idle = queue.SimpleQueue()
        self._by_shape = {}

    @property
    def outputs(self) -> dict[str, TensorSpec]:
        return {name: s for name, (_, s) in self._outputs.items()}

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        compiled, idle = self.compiled, self._idle
        if compiled is None:
            raise RunnerClosed("OpenVINO")
        if self._dynamic:
            compiled, idle = self._for_shape(tuple(
                tuple(np.shape(inputs[n])) if n in inputs else None for n in self._inputs))
        try:
            request = idle.get_nowait()
        except queue.Empty:
            request = compiled.create_infer_request()
        try:
            result = request.infer(inputs, share_inputs=False, share_outputs=False)
            return {name: np.asarray(result[compiled.outputs[i]])
                    for name, (i, _) in self._outputs.items()}
        finally:
            idle.put(request)

    def _for_shape(self, shapes: tuple) -> tuple:
        if None in shapes:  # a missing input: the engine's own error names it
            return self.compiled, self._idle
        self._check_fixed(shapes)
        with self._lock:  # least recently used first: a hit moves to the end
            got = self._by_shape.pop(shapes, None)
            if got is None:
                got = (self._compile_shape(shapes), queue.SimpleQueue())
                while len(self._by_shape) >= MAX_SHAPES:
                    del self._by_shape[next(iter(self._by_shape))]
            self._by_shape[shapes] = got
        return got

    def _check_fixed(self, shapes: tuple) -> None:
        """Refuse a shape that differs from the graph in a dimension the graph fixes (a
        reshape would otherwise run the graph at a size it was not made for)."""
        for port, shape in zip(self._model.inputs, shapes):
            fixed = [d.get_length() if d.is_static else None
                     for d in port.get_partial_shape()]
            if len(shape) != len(fixed) or any(f is not None and f != s
                                               for f, s in zip(fixed, shape)):
                want = "x".join("?" if f is None else str(f) for f in fixed)
                raise UsageError(f"input {_name(port)!r} of shape "
                                 f"{'x'.join(map(str, shape))} does not fit the graph's {want} "
                                 "(? is dynamic)")


MAX_SHAPES = 16  # static compilations a dynamic model keeps (sizes x batch sizes)


def _dynamic_inputs(model) -> bool:
    """True when some input has a dynamic dimension (and every input a static rank)."""
    shapes = [p.get_partial_shape() for p in model.inputs]
    return bool(shapes) and all(s.rank.is_static for s in shapes) and any(
        not d.is_static for s in shapes for d in s)


def _first_shape(model) -> tuple | None:
    """The static shapes to compile at load for a dynamic batch (batch 1), or None when a
    height or width is dynamic too: no size is known to be valid before the first call,
    so the dynamic model itself is compiled at load (that checks the file)."""
    out = []
    for p in model.inputs:
        dims = list(p.get_partial_shape())
        if any(not d.is_static for d in dims[1:]):
            return None
        out.append((1, *(d.get_length() for d in dims[1:])))
    return tuple(out)


def _spec(port) -> TensorSpec:
    shape = port.get_partial_shape()
    dims = [d.get_length() if d.is_static else None for d in shape] if shape.rank.is_static \
        else []
    return spec(dims, port.get_element_type().to_dtype())


def _name(port, preferred: set[str] = frozenset()) -> str:
    """The graph-level name of a port. OpenVINO keeps every name a tensor had (the ONNX
    graph output's and internal ones such as '/net/Resize_output_0' or a converter's
    'graph_output_cast_0'): a name the caller expects wins, else one without a path."""
    names = sorted(port.get_names())
    hit = [n for n in names if n in preferred]
    plain = [n for n in names if "/" not in n]
    return (hit or plain or names or [port.get_any_name()])[0]


# INFERENCE_PRECISION_HINT values by the CPU plugin's OPTIMIZATION_CAPABILITIES entry
_HINTS = {"BF16": "bf16", "FP16": "f16"}


def inference_precisions(device: str = "CPU") -> list[str]:
    """The inference precisions (INFERENCE_PRECISION_HINT values) OpenVINO offers for float
    ops on `device`: f32 always, bf16 and f16 where the device reports them (AVX-512 BF16 /
    AMX, AVX-512 FP16 CPUs)."""
    import openvino as ov

    caps = ov.Core().get_property(device, "OPTIMIZATION_CAPABILITIES")
    return ["f32", *(hint for cap, hint in _HINTS.items() if cap in caps)]


def device_options(device: Device) -> dict:
    """Runner options for a device of the one grammar (core/devices.py): OpenVINO's names."""
    name = device.kind.upper()
    return {"device": name if device.index is None else f"{name}.{device.index}"}
