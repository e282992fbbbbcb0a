"""A stand-in for the `tensorrt` module and CUDA, in numpy, so the builder's and runner's
control flow (configuration calls, engine files and meta.json, buffer binding, copies, CUDA
graph replay, event timings, refusals) runs on machines without TensorRT or a GPU. It mimics
only the documented TensorRT 10 Python API surface edgeseg uses; the engine it "builds"
computes a fixed function (logits = per-class weighted channel sums) so results can be
checked. With `install(..., graph=True)` the engine it builds instead carries the artifact's
ONNX graph and runs it with ONNX Runtime, under the graph's own tensor names, dtypes and
shapes, so the runner can be held to the same results as every other engine
(tests/backends/test_runners.py). It proves the wiring, not TensorRT's behaviour."""

from __future__ import annotations

import importlib.machinery
import struct
import threading
import time
import types

import numpy as np

VERSION = "10.3.0"


def plan_bytes(version: str = VERSION, classes: int = 8, shape=(1, 3, 32, 64)) -> bytes:
    major, minor, patch = (int(v) for v in version.split(".")[:3])
    head = struct.pack("<II", 0x74727466, 0) + bytes(16) + bytes([major, minor, patch, 1])
    return head + struct.pack("<5I", classes, *shape)


class _Enum:
    def __init__(self, *names):
        for i, n in enumerate(names):
            setattr(self, n, i)


class Recorder:
    """An object that accepts any attribute and records what was set or called."""

    def __init__(self, log):
        object.__setattr__(self, "_log", log)

    def __setattr__(self, name, value):
        self._log.append(("set", name, value))
        object.__setattr__(self, name, value)


class Config(Recorder):
    def set_memory_pool_limit(self, pool, size):
        self._log.append(("pool", pool, size))

    def set_flag(self, flag):
        self._log.append(("flag", flag))

    def add_optimization_profile(self, profile):
        self._log.append(("profile", profile.shapes))

    def create_timing_cache(self, blob):
        return types.SimpleNamespace(serialize=lambda: b"timing" + bytes(blob))

    def set_timing_cache(self, cache, ignore_mismatch):
        self._cache = cache
        return True

    def get_timing_cache(self):
        return self._cache

    def can_run_on_DLA(self, layer):  # noqa: N802 (TensorRT's name)
        return True

    def get_device_type(self, layer):
        return self._trt.DeviceType.DLA


class Engine:
    def __init__(self, trt, classes, shape):
        self.trt, self.classes, self.shape = trt, classes, tuple(shape)
        self.names = ["image", "logits"]
        self.num_io_tensors = 2

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return self.trt.TensorIOMode.INPUT if name == "image" else self.trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return self.trt.float32

    def get_tensor_shape(self, name):
        n, _, h, w = self.shape
        return self.shape if name == "image" else (n, self.classes, h, w)

    def create_execution_context(self):
        return Context(self)


class Context:
    def __init__(self, engine):
        self.engine, self.shapes, self.addresses = engine, {}, {}
        self.cuda = None  # set by install(): the fake device memory

    def set_input_shape(self, name, shape):
        if tuple(shape)[1:] != self.engine.shape[1:]:
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        n, _, h, w = self.shapes["image"]
        return (n, self.engine.classes, h, w)

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream):
        x = self.cuda.view(self.addresses["image"], self.shapes["image"])
        y = self.cuda.view(self.addresses["logits"], self.get_tensor_shape("logits"))
        w = np.arange(1, 3 * self.engine.classes + 1, dtype=np.float32).reshape(-1, 3) / 10
        y[...] = np.einsum("kc,nchw->nkhw", w, x)
        return True


GRAPH_TAG = b"ONNX"  # after the plan header: the graph a graph=True engine runs
_DTYPES = {"tensor(float)": ("float32", np.float32), "tensor(float16)": ("float16", np.float16),
           "tensor(int32)": ("int32", np.int32), "tensor(int64)": ("int64", np.int64),
           "tensor(uint8)": ("uint8", np.uint8), "tensor(int8)": ("int8", np.int8)}


class GraphEngine:
    """An engine that runs an ONNX graph with ONNX Runtime. Like TensorRT, it reports -1 for
    the dynamic (batch) dimensions and the static ones even where the ONNX file left them
    symbolic: output shapes come from running the graph at batch 1 and 2."""

    def __init__(self, trt, graph: bytes):
        import onnxruntime as ort

        self.trt = trt
        self.session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        args = self.session.get_inputs() + self.session.get_outputs()
        self.inputs = [a.name for a in self.session.get_inputs()]
        self.names = [a.name for a in args]
        self.num_io_tensors = len(args)
        self.types = {a.name: _DTYPES[a.type] for a in args}
        self.dims = {a.name: tuple(d if isinstance(d, int) else -1 for d in a.shape)
                     for a in self.session.get_inputs()}
        probes = [self.session.run(None, {
            n: np.zeros([batch if d == -1 else d for d in self.dims[n]], self.types[n][1])
            for n in self.inputs}) for batch in (1, 2)]
        for a, one, two in zip(self.session.get_outputs(), *probes):
            self.dims[a.name] = tuple(-1 if p != q else p for p, q in zip(one.shape, two.shape))

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        mode = self.trt.TensorIOMode
        return mode.INPUT if name in self.inputs else mode.OUTPUT

    def get_tensor_dtype(self, name):
        return getattr(self.trt, self.types[name][0])

    def get_tensor_shape(self, name):
        return self.dims[name]

    def create_execution_context(self):
        return GraphContext(self)


class GraphContext:
    def __init__(self, engine):
        self.engine, self.shapes, self.addresses = engine, {}, {}
        self.cuda = None

    def set_input_shape(self, name, shape):
        dims = self.engine.dims[name]
        if len(shape) != len(dims) or any(d not in (-1, s) for d, s in zip(dims, shape)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        if name in self.engine.inputs:
            return self.shapes[name]
        batch = self.shapes[self.engine.inputs[0]][0]
        return tuple(batch if d == -1 else d for d in self.engine.dims[name])

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream):
        e = self.engine
        feed = {n: self.cuda.view(self.addresses[n], self.shapes[n], e.types[n][1]).copy()
                for n in e.inputs}
        outputs = [n for n in e.names if n not in e.inputs]
        for n, y in zip(outputs, e.session.run(outputs, feed)):
            self.cuda.view(self.addresses[n], y.shape, e.types[n][1])[...] = y
        return True


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


def module(log: list, cuda: FakeCuda, version: str = VERSION,
           graph: bool = False) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = version
    trt.float32, trt.float16, trt.int32, trt.int8, trt.uint8, trt.bool = \
        "f32", "f16", "i32", "i8", "u8", "b"
    trt.int64 = "i64"
    trt.BuilderFlag = _Enum("FP16", "INT8", "GPU_FALLBACK", "VERSION_COMPATIBLE")
    trt.MemoryPoolType = _Enum("WORKSPACE")
    trt.NetworkDefinitionCreationFlag = _Enum("STRONGLY_TYPED")
    trt.ProfilingVerbosity = _Enum("LAYER_NAMES_ONLY", "DETAILED")
    trt.HardwareCompatibilityLevel = _Enum("NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY")
    trt.DeviceType = _Enum("GPU", "DLA")
    trt.TensorIOMode = _Enum("NONE", "INPUT", "OUTPUT")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: None})

    class Builder:
        num_DLA_cores = 2

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            log.append(("network", flags))
            return types.SimpleNamespace(num_layers=0, get_layer=None)

        def create_builder_config(self):
            c = Config(log)
            object.__setattr__(c, "_trt", trt)
            return c

        def create_optimization_profile(self):
            p = types.SimpleNamespace(shapes={})
            p.set_shape = lambda name, lo, opt, hi: p.shapes.update({name: (lo, opt, hi)})
            return p

        def build_serialized_network(self, network, config):
            if graph:
                with open(network.onnx_path, "rb") as f:
                    return plan_bytes(version) + GRAPH_TAG + f.read()
            return plan_bytes(version)

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            self.network = network

        def parse_from_file(self, path):
            log.append(("parse", path))
            self.network.onnx_path = path
            return True

    class Runtime:
        def __init__(self, logger):
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, blob):
            if blob[:4] != struct.pack("<I", 0x74727466) or len(blob) < 48:
                return None
            classes, *shape = struct.unpack_from("<5I", blob, 28)
            if blob[48:52] == GRAPH_TAG:
                try:
                    engine = GraphEngine(trt, bytes(blob[52:]))
                except Exception:  # TensorRT logs why and returns None for a damaged plan
                    return None
            else:
                engine = Engine(trt, classes, shape)
            make = engine.create_execution_context

            def context():
                c = make()
                c.cuda = cuda
                return c

            engine.create_execution_context = context
            return engine

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


def install(monkeypatch, version: str = VERSION, graph: bool = False
            ) -> tuple[list, FakeCuda]:
    """Put the fake `tensorrt` and CUDA in place for one test; with `graph`, engines it
    builds run the artifact's ONNX graph."""
    import sys

    from edgeseg.backends.tensorrt import cuda as cuda_module

    log: list = []
    cuda = FakeCuda()
    monkeypatch.setitem(sys.modules, "tensorrt", module(log, cuda, version, graph))
    monkeypatch.setattr(cuda_module, "open_cuda", lambda device=0: cuda)
    return log, cuda
