"""TensorRT runner: a serialized engine (model.<tag>.engine) run with the TensorRT 10/11
tensor API (set_input_shape, set_tensor_address, execute_async_v3) on one CUDA stream, with
pinned host buffers, optional CUDA graph capture, and CUDA-event timings of copy in, compute
and copy out (`last_timings`, what `edgeseg bench` reports on GPUs).

Before the plan is deserialised, the engine's meta.json build record (the artifact directory
around the engine) is checked against this machine's TensorRT version and GPU, so an engine
built elsewhere is refused with the reason instead of failing inside TensorRT.

One runner may be called from several threads; the calls take turns (a lock around each).
A call's state is the execution context's shapes and addresses, the pinned and device
buffers bound to them, the stream, the events and a captured CUDA graph: all of it would
need to exist once per concurrent caller (a context per thread also holds its own
activation memory, which a Jetson cannot spare), while the calls would still share one GPU
that runs them one after another. Taking turns costs nothing the GPU would have overlapped
beyond host-side copies."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from edgeseg.backends.common import (
    GraphIO,
    RunnerClosed,
    TensorSpec,
    require_model_file,
    spec,
)
from edgeseg.backends.tensorrt import cuda as cuda_api
from edgeseg.backends.tensorrt.plan import EngineMismatch, check_build, check_plan_header
from edgeseg.core.artifact import ArtifactError, sha256
from edgeseg.core.errors import UsageError


def _np_dtype(trt, dtype) -> np.dtype:
    table = {trt.float32: np.float32, trt.float16: np.float16, trt.int32: np.int32,
             trt.int8: np.int8, trt.uint8: np.uint8, trt.bool: np.bool_}
    if hasattr(trt, "int64"):
        table[trt.int64] = np.int64
    if dtype not in table:
        raise RuntimeError(f"engine I/O tensor of type {dtype}: not supported by this runner")
    return np.dtype(table[dtype])


def build_record_for(engine_path: Path) -> dict | None:
    """The engine's build record from the artifact's meta.json (None for a bare engine file),
    after checking the engine's sha256 against it: a truncated or replaced file is refused
    before TensorRT reads it."""

    meta_path = engine_path.parent / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{meta_path}: not valid JSON ({e}); re-export the artifact or "
                            "move the engine out of this folder") from None
    digest = meta.get("files", {}).get(engine_path.name)
    if digest is not None and engine_path.is_file() and sha256(engine_path) != digest:
        raise ArtifactError(f"{engine_path}: its sha256 differs from meta.json (a truncated or "
                            "replaced engine); rebuild it with edgeseg build --force")
    for b in meta.get("builds", []):
        if b.get("backend") == "tensorrt" and b.get("file") == engine_path.name:
            return b
    return None


class Runner(GraphIO):
    """`with Runner(".../model.<tag>.engine") as r: r.infer({"input": x})`."""

    def __init__(self, model_path: str | Path, *, device: int = 0, cuda_graph: bool = False,
                 output_names: list[str] | None = None, threads: int | None = None,
                 int8_kernels: bool = True) -> None:
        # threads / int8_kernels: accepted for a uniform runner signature (CPU-engine knobs).
        self.model_path = Path(model_path)
        self.device = device
        self.cuda_graph = cuda_graph
        self.engine = self.context = self.cuda = None
        self.last_timings: dict[str, float] = {}  # the latest call's, from any thread
        self._lock = threading.Lock()

    def __enter__(self) -> Runner:
        import tensorrt as trt

        require_model_file(self.model_path, "TensorRT")
        self.trt = trt
        self.cuda = cuda_api.open_cuda(self.device)
        record = build_record_for(self.model_path)
        if record is not None:
            check_build(record, trt.__version__, self.cuda.compute_capability)
        plan = self.model_path.read_bytes()
        check_plan_header(plan[:28], trt.__version__, str(self.model_path),
                          bool(record and record.get("version_compatible")))
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        if record is not None and record.get("version_compatible"):
            self.runtime.engine_host_code_allowed = True
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise EngineMismatch(f"{self.model_path}: TensorRT {trt.__version__} could not "
                                 "deserialize it: a truncated file, or an engine built by another "
                                 "TensorRT version or for another GPU; rebuild it on this machine")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self._in = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self._out = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        self.dtypes = {n: _np_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        self._specs = {n: spec(tuple(self.engine.get_tensor_shape(n)), self.dtypes[n])
                       for n in names}
        self._shapes: dict[str, tuple] = {}
        self._host: dict[str, np.ndarray] = {}  # views of _flat at the current shapes
        self._flat: dict[str, np.ndarray] = {}  # each tensor's pinned buffer, its capacity
        self._dev: dict[str, int] = {}
        self._launch = None
        self._events = [self.cuda.event() for _ in range(4)]  # reused: no per-call allocation
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:  # not while a call still uses the buffers
            if self.cuda is not None:
                self.cuda.close()
            self.context = self.engine = self.cuda = None

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        return {n: self._specs[n] for n in self._in}

    @property
    def outputs(self) -> dict[str, TensorSpec]:
        return {n: self._specs[n] for n in self._out}

    def _bind(self, inputs: dict[str, np.ndarray]) -> None:
        """Point the tensors at buffers for these input shapes when they change. Buffers
        only grow: a tensor gets new ones (and its old ones are freed) when it needs more
        bytes than it ever had, so frames alternating between sizes or batches allocate
        nothing after the largest has been seen."""
        shapes = {n: tuple(inputs[n].shape) for n in self._in}
        if shapes == self._shapes:
            return
        for n, shape in shapes.items():
            if not self.context.set_input_shape(n, shape):
                raise UsageError(f"input {n!r} of shape {shape} is outside the engine's "
                                 "optimisation profile (edgeseg build --shapes MIN/OPT/MAX)")
        for n in self._in + self._out:
            shape = shapes[n] if n in shapes else tuple(self.context.get_tensor_shape(n))
            nbytes = int(np.prod(shape)) * np.dtype(self.dtypes[n]).itemsize
            if nbytes > self._flat.get(n, np.empty(0, np.uint8)).nbytes:
                self.cuda.synchronize()  # nothing in flight may still use the old ones
                if n in self._flat:
                    self.cuda.free(self._dev[n])
                    self.cuda.free(self._flat[n].ctypes.data)
                self._flat[n] = self.cuda.pinned((nbytes,), np.uint8)
                self._dev[n] = self.cuda.alloc(nbytes)
            self._host[n] = self._flat[n][:nbytes].view(self.dtypes[n]).reshape(shape)
            self.context.set_tensor_address(n, self._dev[n])
        self._shapes = shapes
        self._launch = None

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.cuda.handle):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")

    def infer_timed(self, inputs: dict[str, np.ndarray]
                    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """(outputs, copy_in / compute / copy_out ms from CUDA events) of the same call:
        what bench reports."""
        with self._lock:
            if self.context is None:
                raise RunnerClosed("TensorRT")
            return self._infer(inputs)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.infer_timed(inputs)[0]

    def _infer(self, inputs: dict[str, np.ndarray]
               ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        missing = [n for n in self._in if n not in inputs]
        if missing:
            raise UsageError(f"missing inputs {missing}; the engine takes {self._in}")
        cuda = self.cuda
        cuda.make_current()  # a thread other than the opener's starts on GPU 0
        self._bind(inputs)
        events = self._events
        for n in self._in:
            np.copyto(self._host[n], inputs[n].astype(self.dtypes[n], copy=False))
        cuda.record(events[0])
        for n in self._in:
            cuda.copy(self._dev[n], self._host[n].ctypes.data, self._host[n].nbytes)
        cuda.record(events[1])
        if self.cuda_graph:
            if self._launch is None:
                self._enqueue()  # one plain run first: TensorRT allocates lazily on it
                self._launch = cuda.capture(self._enqueue)
            self._launch()
        else:
            self._enqueue()
        cuda.record(events[2])
        for n in self._out:
            cuda.copy(self._host[n].ctypes.data, self._dev[n], self._host[n].nbytes)
        cuda.record(events[3])
        cuda.synchronize()
        timings = {"copy_in": cuda.elapsed_ms(events[0], events[1]),
                   "compute": cuda.elapsed_ms(events[1], events[2]),
                   "copy_out": cuda.elapsed_ms(events[2], events[3])}
        self.last_timings = timings
        # Copies: the pinned buffers are refilled by the next call, maybe another thread's.
        return {n: self._host[n].copy() for n in self._out}, dict(timings)
