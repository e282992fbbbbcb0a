"""The stand-in `tensorrt`'s run side (see fake_tensorrt.py): runtime, engines and execution
contexts (the fixed-function one and the ONNX Runtime one), and the fake CUDA helper."""

from __future__ import annotations

import struct
import threading
import time

import numpy as np

from tests.backends._fake_trt_api import (
    _DATATYPES,
    _FAKE_MODULES,
    _ONNX_DTYPES,
    _VERSION_COMPATIBLE,
    GRAPH_TAG,
    PLAN_TAG,
    _Bound,
    _prop,
)
from tests.backends._fake_trt_build import _Logger

_FAKE_MODULES.add(__name__)


class _ContextBase(_Bound):
    """What both execution contexts share: their engine, input shapes and tensor addresses."""

    _API = "IExecutionContext"

    def __init__(self, engine) -> None:
        super().__init__()
        self._engine, self._shapes, self._addresses = engine, {}, {}

    def set_tensor_address(self, name, memory):
        self._addresses[name] = memory
        return True


class _Context(_ContextBase):
    def set_input_shape(self, name, shape):
        if tuple(shape)[1:] != self._engine._shape[1:]:
            return False
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        n, _, h, w = self._shapes["image"]
        return (n, self._engine._classes, h, w)

    def execute_async_v3(self, stream_handle):
        cuda = self._api.cuda
        x = cuda.view(self._addresses["image"], self._shapes["image"])
        n, _, h, w = self._shapes["image"]
        y = cuda.view(self._addresses["logits"], (n, self._engine._classes, h, w))
        k = self._engine._classes
        weights = np.arange(1, 3 * k + 1, dtype=np.float32).reshape(k, 3) / 10
        y[...] = np.einsum("kc,nchw->nkhw", weights, x)
        return True


class _GraphContext(_ContextBase):
    def set_input_shape(self, name, shape):
        dims = self._engine._dims[name]
        if len(shape) != len(dims) or any(d not in (-1, s) for d, s in zip(dims, shape)):
            return False
        self._shapes[name] = tuple(shape)
        return True

    def _shape(self, name):
        e = self._engine
        if name in e._inputs:
            return self._shapes[name]
        batch = self._shapes[e._inputs[0]][0]
        return tuple(batch if d == -1 else d for d in e._dims[name])

    def get_tensor_shape(self, name):
        return self._shape(name)

    def execute_async_v3(self, stream_handle):
        e, cuda = self._engine, self._api.cuda
        feed = {n: cuda.view(self._addresses[n], self._shapes[n], e._np(n)).copy()
                for n in e._inputs}
        outputs = [n for n in e._names if n not in e._inputs]
        for n, y in zip(outputs, e._session.run(outputs, feed)):
            cuda.view(self._addresses[n], y.shape, e._np(n))[...] = y
        return True


class _EngineBase(_Bound):
    """What both engines share: their I/O tensors (`_names`, the inputs among them `_inputs`)
    and a context of their kind (`_CONTEXT`)."""

    _API = "ICudaEngine"
    _CONTEXT: type = _ContextBase

    @property
    def num_io_tensors(self):
        return len(self._names)

    def get_tensor_name(self, index):
        return self._names[index]

    def get_tensor_mode(self, name):
        return self._api.value("TensorIOMode", "INPUT" if name in self._inputs else "OUTPUT")

    def create_execution_context(self):
        return self._api.new(self._CONTEXT, self)


class _Engine(_EngineBase):
    """A plan that computes logits = per-class weighted channel sums."""

    _CONTEXT = _Context

    def __init__(self, classes: int, shape) -> None:
        super().__init__()
        self._classes, self._shape = classes, tuple(shape)
        self._names, self._inputs = ["image", "logits"], ["image"]

    def _dims(self, name):
        n, _, h, w = self._shape
        return self._shape if name == "image" else (n, self._classes, h, w)

    def get_tensor_dtype(self, name):
        return self._api.datatype("float32")

    def get_tensor_shape(self, name):
        return self._dims(name)


class _GraphEngine(_EngineBase):
    """An engine that runs an ONNX graph with ONNX Runtime. Like TensorRT, it reports -1 for
    the dynamic (batch) dimensions and the static ones even where the ONNX file left them
    symbolic: output shapes come from running the graph at batch 1 and 2."""

    _CONTEXT = _GraphContext

    def __init__(self, graph: bytes) -> None:
        import onnxruntime as ort

        super().__init__()
        self._session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        args = self._session.get_inputs() + self._session.get_outputs()
        self._inputs = [a.name for a in self._session.get_inputs()]
        self._names = [a.name for a in args]
        self._types = {a.name: _ONNX_DTYPES[a.type] for a in args}
        self._dims = {a.name: tuple(d if isinstance(d, int) else -1 for d in a.shape)
                      for a in self._session.get_inputs()}
        probes = [self._session.run(None, {
            n: np.zeros([batch if d == -1 else d for d in self._dims[n]], self._np(n))
            for n in self._inputs}) for batch in (1, 2)]
        for a, one, two in zip(self._session.get_outputs(), *probes):
            self._dims[a.name] = tuple(-1 if p != q else p for p, q in zip(one.shape, two.shape))

    def _np(self, name):
        return _DATATYPES[self._types[name]][2]

    def get_tensor_dtype(self, name):
        return self._api.datatype(self._types[name])

    def get_tensor_shape(self, name):
        return self._dims[name]


class _Runtime(_Bound):
    _API = "Runtime"
    engine_host_code_allowed = _prop("engine_host_code_allowed")

    def __init__(self, logger) -> None:
        super().__init__()
        if not isinstance(logger, self._api.bind(_Logger)):
            raise TypeError("Runtime(): incompatible function arguments (an ILogger is "
                            "expected)")

    def deserialize_cuda_engine(self, serialized_engine):
        """The engine, or None with the reason logged, like TensorRT."""
        api = self._api
        blob = bytes(serialized_engine)
        why = None
        if len(blob) < 48 or struct.unpack_from("<I", blob)[0] != PLAN_TAG:
            why = "not a plan"
        else:
            vc = bool(struct.unpack_from("<I", blob, 4)[0] & _VERSION_COMPATIBLE)
            built = tuple(blob[24:27])
            if built != api.release and not (vc and built[0] == api.release[0]
                                             and built <= api.release):
                why = f"plan of TensorRT {built}, this is {api.release}"
            elif vc and not self._values.get("engine_host_code_allowed"):
                why = "a version-compatible plan needs engine_host_code_allowed"
        if why is not None:
            api.log.append(("error", why))
            return None
        if blob[48:52] == GRAPH_TAG:
            try:
                return api.new(_GraphEngine, blob[52:])
            except Exception:  # TensorRT logs why and returns None for a damaged plan
                return None
        classes, *shape = struct.unpack_from("<5I", blob, 28)
        return api.new(_Engine, classes, shape)



class FakeCuda:
    """The runner's CUDA helper interface over numpy buffers ("device" = a dict)."""

    name, compute_capability, handle = "NVIDIA Fake GPU", "8.7", 1

    def __init__(self):
        self.buffers: dict[int, np.ndarray] = {}
        self.next, self.copies, self.captured = 1 << 20, 0, 0
        self.current_in: set[int] = set()  # threads that made this GPU their current one

    def make_current(self):
        self.current_in.add(threading.get_ident())

    def alloc(self, nbytes):
        ptr, self.next = self.next, self.next + nbytes + 256
        self.buffers[ptr] = np.zeros(max(nbytes, 1), np.uint8)
        return ptr

    def pinned(self, shape, dtype):
        a = np.zeros(shape, dtype)
        self.buffers[a.ctypes.data] = a.view(np.uint8).reshape(-1)
        return a

    def free(self, ptr):
        del self.buffers[ptr]  # a KeyError for a pointer it never made, or freed twice

    def view(self, ptr, shape, dtype=np.float32):
        return self.buffers[ptr].view(dtype)[:int(np.prod(shape))].reshape(shape)

    def copy(self, dst, src, nbytes):
        self.buffers[dst][:nbytes] = self.buffers[src][:nbytes]
        self.copies += 1

    def event(self):
        return [0.0]

    def record(self, event):
        event[0] = time.perf_counter()

    def elapsed_ms(self, start, end):
        return (end[0] - start[0]) * 1000.0

    def synchronize(self):
        pass

    def capture(self, launch):
        self.captured += 1
        return launch

    def close(self):
        pass

