"""A stand-in for the `tensorrt` module and CUDA, in numpy, so the builder's and runner's
control flow (configuration calls, engine files and meta.json, buffer binding, copies, CUDA
graph replay, event timings, calibration, refusals) runs on machines without TensorRT or a
GPU. The engine it "builds" computes a fixed function (logits = per-class weighted channel
sums) so results can be checked. With `install(..., graph=True)` the engine it builds instead
carries the artifact's ONNX graph and runs it with ONNX Runtime, under the graph's own tensor
names, dtypes and shapes, so the runner can be held to the same results as every other engine
(tests/backends/test_runners.py). It proves the wiring, not TensorRT's behaviour.

It is held to TensorRT's real Python API, release by release. A module made for version X
exposes only the names edgeseg needs that X's bindings define: `exposed(X)`, the names the
stand-in implements less those LIFETIMES says X lacks (no FP16/INT8 builder flags or
calibrators on 11.x). test_tensorrt_api.py holds those sets to the bindings of 10.3.0, 10.13.3,
10.16 and 11.1. Any other attribute of the module, its enums, classes and the objects they
return raises AttributeError, as pybind11 does, and every name handed out is recorded under
its real-API spelling (`tensorrt.IBuilderConfig.set_flag`: the class the real call returns)
in an ApiRecord, so a test can list what each route of edgeseg's code uses."""

from __future__ import annotations

import functools
import importlib.machinery
import re
import struct
import threading
import time
import types

import numpy as np

VERSION = "10.3.0"
_TRT11 = (11, 0, 0)
# Names that exist only from (since) or before (until) a release; the prefix of a class
# covers its members. Every other name the stand-in defines is taken to exist in all of 10.x
# and 11.x (test_tensorrt_api.py checks 10.3.0, 10.13.3, 10.16 and 11.1).
LIFETIMES: dict[str, tuple[tuple | None, tuple | None]] = {
    "tensorrt.BuilderFlag.FP16": (None, _TRT11),
    "tensorrt.BuilderFlag.INT8": (None, _TRT11),
    "tensorrt.IBuilderConfig.int8_calibrator": (None, _TRT11),
    "tensorrt.IInt8EntropyCalibrator2": (None, _TRT11),
    # In 10.13.3, not in 10.3.0; plan.HARDWARE_COMPAT dates it 10.9.
    "tensorrt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY": ((10, 9, 0), None),
}

PLAN_TAG = 0x74727466
_VERSION_COMPATIBLE = 1  # bit of the plan's second word: the engine carries host code
GRAPH_TAG = b"ONNX"  # after the plan header: the graph a graph=True engine runs


def release(version: str) -> tuple[int, int, int]:
    nums = [int(n) for n in re.findall(r"\d+", version)[:3]]
    return tuple((nums + [0, 0])[:3])  # type: ignore[return-value]


def plan_bytes(version: str = VERSION, classes: int = 8, shape=(1, 3, 32, 64),
               version_compatible: bool = False) -> bytes:
    flags = _VERSION_COMPATIBLE if version_compatible else 0
    head = struct.pack("<II", PLAN_TAG, flags) + bytes(16) + bytes([*release(version), 1])
    return head + struct.pack("<5I", classes, *shape)


class ApiRecord:
    """What a stand-in module was asked for: `used`, the real-API names it handed out (read,
    set, called, or overridden by a subclass), and `absent`, the names asked for that its
    release lacks (a hasattr/getattr probe, or an AttributeError the caller saw)."""

    def __init__(self) -> None:
        self.used: dict[str, None] = {}  # ordered: first use first
        self.absent: dict[str, None] = {}


class _EnumValue:
    __slots__ = ("_enum", "_name", "_value")

    def __init__(self, enum: str, name: str, value: int) -> None:
        self._enum, self._name, self._value = enum, name, value

    def __eq__(self, other):
        # pybind11 enums of different types never compare equal, whatever their values.
        return isinstance(other, _EnumValue) and (self._enum, self._value) == \
            (other._enum, other._value)

    def __hash__(self):
        return hash((self._enum, self._value))

    def __int__(self):
        return self._value

    __index__ = __int__

    def __repr__(self):
        return f"{self._enum}.{self._name}"

    __str__ = __repr__


# The enums edgeseg uses, with the headers' values (NvInfer.h, NvInferRuntime*.h) where they
# reach TensorRT as numbers.
_ENUMS = {
    "BuilderFlag": {"FP16": 0, "INT8": 2, "GPU_FALLBACK": 4, "VERSION_COMPATIBLE": 13},
    "MemoryPoolType": {"WORKSPACE": 0},
    "NetworkDefinitionCreationFlag": {"STRONGLY_TYPED": 1},  # 0 from 11.0: see _enum_values
    "ProfilingVerbosity": {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2},
    "HardwareCompatibilityLevel": {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": 2},
    "DeviceType": {"GPU": 0, "DLA": 1},
    "TensorIOMode": {"NONE": 0, "INPUT": 1, "OUTPUT": 2},
    "LayerType": {"CONVOLUTION": 0, "ACTIVATION": 2, "POOLING": 3, "SCALE": 5,
                  "ELEMENTWISE": 7, "CONCATENATION": 10, "DECONVOLUTION": 11, "SHUFFLE": 14,
                  "REDUCE": 15, "RESIZE": 26, "QUANTIZE": 34, "DEQUANTIZE": 35, "CAST": 46},
}
# tensorrt.<name> -> (DataType member, value, numpy dtype)
_DATATYPES = {"float32": ("FLOAT", 0, np.float32), "float16": ("HALF", 1, np.float16),
              "int8": ("INT8", 2, np.int8), "int32": ("INT32", 3, np.int32),
              "bool": ("BOOL", 4, np.bool_), "uint8": ("UINT8", 5, np.uint8),
              "int64": ("INT64", 8, np.int64)}
_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16",
                "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(uint8)": "uint8",
                "tensor(int8)": "int8", "tensor(bool)": "bool"}
# ONNX op -> the TensorRT layer its parser makes (roughly); other ops become SHUFFLE layers.
_LAYER_OF_OP = {"Conv": "CONVOLUTION", "ConvTranspose": "DECONVOLUTION", "Relu": "ACTIVATION",
                "Sigmoid": "ACTIVATION", "Clip": "ACTIVATION", "AveragePool": "POOLING",
                "MaxPool": "POOLING", "GlobalAveragePool": "REDUCE", "ReduceMean": "REDUCE",
                "BatchNormalization": "SCALE", "Add": "ELEMENTWISE", "Mul": "ELEMENTWISE",
                "Sub": "ELEMENTWISE", "Div": "ELEMENTWISE", "Concat": "CONCATENATION",
                "Resize": "RESIZE", "QuantizeLinear": "QUANTIZE",
                "DequantizeLinear": "DEQUANTIZE", "Cast": "CAST"}
# What the stand-in's DLA takes; other layers need GPU_FALLBACK, as on a Jetson.
_DLA_LAYERS = {"CONVOLUTION", "DECONVOLUTION", "ACTIVATION", "POOLING", "SCALE", "ELEMENTWISE",
               "CONCATENATION", "RESIZE"}


def _is_fake(klass) -> bool:
    return klass.__dict__.get("__module__") == __name__


def _member(cls, name: str) -> str | None:
    """The real-API name that reading or setting `name` on `cls` (or its instances) uses; None
    for what a subclass outside this file (edgeseg's calibrator) defines or holds itself."""
    owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
    fake = _is_fake(owner) if owner is not None else _is_fake(cls)
    return f"tensorrt.{cls._API}.{name}" if fake else None


class _BoundType(type):
    """Class-level reads (`tensorrt.Logger.WARNING`) go through the release's names too."""

    def __getattribute__(cls, name):
        if not name.startswith("_"):
            dotted = _member(cls, name)
            if dotted is not None and not type.__getattribute__(cls, "_api").lookup(dotted):
                raise AttributeError(f"type object '{cls._API}' has no attribute '{name}'")
        return type.__getattribute__(cls, name)


_IMPLS: list[type] = []  # every class below, for exposed()


class _Bound(metaclass=_BoundType):
    """A TensorRT class of the bindings (`_API`: its Python name). Public attributes resolve
    only where the release has them and are recorded; state lives in `_` names, and the
    stand-in's own code touches only those, so the record holds edgeseg's uses alone."""

    _API = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if _is_fake(cls) and "_api" not in cls.__dict__:
            _IMPLS.append(cls)

    def __init__(self, *args, **kw) -> None:
        self._values: dict = {}
        self._initialised = True  # pybind11 refuses a subclass that skipped this

    def __getattribute__(self, name):
        if name.startswith("_") or name in object.__getattribute__(self, "__dict__"):
            return object.__getattribute__(self, name)
        cls = type(self)
        dotted = _member(cls, name)
        if dotted is not None and not cls._api.lookup(dotted):
            raise AttributeError(f"'tensorrt.{cls._API}' object has no attribute '{name}'")
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        if not name.startswith("_"):
            cls = type(self)
            dotted = _member(cls, name)
            if dotted is not None and not cls._api.lookup(dotted):
                raise AttributeError(f"'tensorrt.{cls._API}' object has no attribute '{name}'")
        object.__setattr__(self, name, value)


def _prop(name: str) -> property:
    """A read/write property of the bindings; setting it is logged as ("set", name, value)."""

    def get(self):
        return self._values.get(name)

    def put(self, value):
        self._api.log.append(("set", name, value))
        self._values[name] = value

    return property(get, put)


def _expect(value, enum: str, call: str) -> None:
    """pybind11's refusal of an argument of another type."""
    if not (isinstance(value, _EnumValue) and value._enum == enum):
        raise TypeError(f"{call}(): incompatible function arguments: {value!r} is not a "
                        f"tensorrt.{enum}")


def _pure(name: str):
    raise RuntimeError(f'Tried to call pure virtual function "IInt8EntropyCalibrator2::{name}"')


class _Enum:
    """An enum of the bindings (`tensorrt.BuilderFlag`): its members resolve only where the
    release has them, and are recorded."""

    def __init__(self, api, name: str, members: dict[str, int]) -> None:
        object.__setattr__(self, "_api", api)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members",
                           {m: _EnumValue(name, m, v) for m, v in members.items()})

    def __getattribute__(self, name):
        if name.startswith("_"):
            return object.__getattribute__(self, name)
        if not self._api.lookup(f"tensorrt.{self._name}.{name}"):
            raise AttributeError(f"type object '{self._name}' has no attribute '{name}'")
        return self._members[name]

    def __setattr__(self, name, value):
        raise AttributeError(f"{self._name}.{name} is read-only")


class _Module(types.ModuleType):
    def __getattribute__(self, name):
        if name == "__version__" or not name.startswith("_"):
            if not types.ModuleType.__getattribute__(self, "_api").lookup(f"tensorrt.{name}"):
                raise AttributeError(f"module 'tensorrt' has no attribute '{name}'")
        return types.ModuleType.__getattribute__(self, name)


class _HostMemory(_Bound):
    _API = "IHostMemory"

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = bytes(data)

    def __bytes__(self):
        return self._data


class _Logger(_Bound):
    _API = "Logger"
    WARNING = _EnumValue("Severity", "WARNING", 2)

    def __init__(self, min_severity=WARNING) -> None:
        super().__init__()
        self._severity = min_severity


class _Calibrator(_Bound):
    """TensorRT 10's entropy calibrator: Python subclasses override its virtuals."""

    _API = "IInt8EntropyCalibrator2"

    def get_batch_size(self):
        _pure("getBatchSize")

    def get_batch(self, names):
        _pure("getBatch")

    def read_calibration_cache(self):
        _pure("readCalibrationCache")

    def write_calibration_cache(self, cache):
        _pure("writeCalibrationCache")


class _Layer(_Bound):
    _API = "ILayer"

    def __init__(self, name: str, layer_type) -> None:
        super().__init__()
        self._name, self._type = name, layer_type

    @property
    def type(self):
        return self._type


class _Network(_Bound):
    _API = "INetworkDefinition"

    def __init__(self, strongly_typed: bool) -> None:
        super().__init__()
        self._strongly_typed = strongly_typed
        self._layers: list[_Layer] = []
        self._inputs: dict[str, tuple] = {}  # name -> dims, -1 where dynamic
        self._onnx_path = None

    @property
    def num_layers(self):
        return len(self._layers)

    def get_layer(self, index):
        return self._layers[index]


class _ParserError(_Bound):
    _API = "ParserError"

    def __init__(self, index: int, node) -> None:
        super().__init__()
        self._index, self._node = index, node

    def node(self):
        return self._index

    def desc(self):
        return f"No importer registered for op: {self._node.op_type}"

    def node_name(self):
        return self._node.name

    def node_operator(self):
        return self._node.op_type


class _OnnxParser(_Bound):
    _API = "OnnxParser"

    def __init__(self, network, logger) -> None:
        super().__init__()
        self._network, self._errors = network, []

    def parse_from_file(self, path):
        import onnx

        api = self._api
        graph = onnx.load(path).graph
        self._errors = [api.new(_ParserError, i, n) for i, n in enumerate(graph.node)
                        if n.op_type in api.unsupported]
        if self._errors:
            return False
        api.log.append(("parse", path))
        net = self._network
        weights = {t.name for t in graph.initializer}
        net._inputs = {i.name: tuple(d.dim_value if d.HasField("dim_value") else -1
                                     for d in i.type.tensor_type.shape.dim)
                       for i in graph.input if i.name not in weights}
        net._layers = [api.new(_Layer, n.name, api.value("LayerType",
                                                         _LAYER_OF_OP.get(n.op_type, "SHUFFLE")))
                       for n in graph.node]
        net._onnx_path = path
        return True

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]


class _Profile(_Bound):
    _API = "IOptimizationProfile"

    def __init__(self) -> None:
        super().__init__()
        self._shapes: dict[str, tuple] = {}

    def set_shape(self, input_name, min_shape, opt_shape, max_shape):
        self._shapes[input_name] = (tuple(min_shape), tuple(opt_shape), tuple(max_shape))


class _TimingCache(_Bound):
    _API = "ITimingCache"

    def __init__(self, blob: bytes) -> None:
        super().__init__()
        self._blob = bytes(blob)

    def serialize(self):
        return self._api.new(_HostMemory, b"timing" + self._blob)


class _Config(_Bound):
    _API = "IBuilderConfig"
    builder_optimization_level = _prop("builder_optimization_level")
    hardware_compatibility_level = _prop("hardware_compatibility_level")
    default_device_type = _prop("default_device_type")
    DLA_core = _prop("DLA_core")
    profiling_verbosity = _prop("profiling_verbosity")

    def __init__(self) -> None:
        super().__init__()
        self._flags: set[str] = set()
        self._profiles: list[_Profile] = []
        self._cache = None

    def set_memory_pool_limit(self, pool, pool_size):
        _expect(pool, "MemoryPoolType", "set_memory_pool_limit")
        self._api.log.append(("pool", str(pool), pool_size))

    def set_flag(self, flag):
        _expect(flag, "BuilderFlag", "set_flag")
        self._api.log.append(("flag", str(flag)))
        self._flags.add(flag._name)

    def add_optimization_profile(self, profile):
        self._api.log.append(("profile", dict(profile._shapes)))
        self._profiles.append(profile)
        return len(self._profiles) - 1

    def create_timing_cache(self, serialized_timing_cache):
        return self._api.new(_TimingCache, serialized_timing_cache)

    def set_timing_cache(self, cache, ignore_mismatch):
        self._cache = cache
        return True

    def get_timing_cache(self):
        return self._cache

    def _on_dla(self, layer) -> bool:
        dla = self._api.value("DeviceType", "DLA")
        return self._values.get("default_device_type") == dla and layer._type._name in \
            _DLA_LAYERS

    def can_run_on_DLA(self, layer):  # noqa: N802 (TensorRT's name)
        return layer._type._name in _DLA_LAYERS

    def get_device_type(self, layer):
        return self._api.value("DeviceType", "DLA" if self._on_dla(layer) else "GPU")

    @property
    def int8_calibrator(self):
        return self._values.get("int8_calibrator")

    @int8_calibrator.setter
    def int8_calibrator(self, calibrator):
        api = self._api
        if not isinstance(calibrator, api.bind(_Calibrator)):
            raise TypeError("int8_calibrator: incompatible function arguments (an "
                            "IInt8Calibrator is expected)")
        if not calibrator.__dict__.get("_initialised"):
            raise TypeError(f"{type(calibrator).__name__}.__init__() must be called when "
                            "overriding __init__")
        # TensorRT calls back the methods a subclass defines by their bound names: each one
        # the subclass defines is a name it uses.
        for klass in type(calibrator).__mro__:
            if _is_fake(klass):
                break
            for name, value in klass.__dict__.items():
                if callable(value) and not name.startswith("_"):
                    api.lookup(f"tensorrt.{_Calibrator._API}.{name}")
        api.log.append(("set", "int8_calibrator", calibrator))
        self._values["int8_calibrator"] = calibrator


class _Builder(_Bound):
    _API = "Builder"

    def __init__(self, logger) -> None:
        super().__init__()
        if not isinstance(logger, self._api.bind(_Logger)):
            raise TypeError("Builder(): incompatible function arguments (an ILogger is expected)")

    @property
    def num_DLA_cores(self):  # noqa: N802 (TensorRT's name)
        return 2

    def create_network(self, flags=0):
        api = self._api
        api.log.append(("network", flags))
        strong = int(api.value("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"))
        if api.release >= _TRT11:  # every network is; bit 0 (the old flag) is ignored
            if flags & ~1:
                raise ValueError(f"create_network({flags}): edgeseg sets no TensorRT 11 "
                                 "network flag (bit 1 is PREFER_JIT_PYTHON_PLUGINS)")
            return api.new(_Network, True)
        return api.new(_Network, bool(flags & (1 << strong)))

    def create_builder_config(self):
        return self._api.new(_Config)

    def create_optimization_profile(self):
        return self._api.new(_Profile)

    def build_serialized_network(self, network, config):
        """The plan, or None with the reason logged as ("error", why), like TensorRT."""
        api = self._api
        why = self._refusal(network, config)
        if why is None and "INT8" in config._flags:
            why = self._calibrate(network, config._values.get("int8_calibrator"))
        if why is not None:
            api.log.append(("error", why))
            return None
        head = plan_bytes(api.version,
                          version_compatible="VERSION_COMPATIBLE" in config._flags)
        if api.graph:
            with open(network._onnx_path, "rb") as f:
                return api.new(_HostMemory, head + GRAPH_TAG + f.read())
        return api.new(_HostMemory, head)

    def _refusal(self, network, config) -> str | None:
        if network._onnx_path is None:
            return "the network is empty (nothing parsed)"
        dynamic = [n for n, dims in network._inputs.items() if -1 in dims]
        shaped = {n for p in config._profiles for n in p._shapes}
        if set(dynamic) - shaped:
            return f"network has dynamic inputs {dynamic} but no optimization profile"
        if config._values.get("default_device_type") == self._api.value("DeviceType", "DLA"):
            if not network._strongly_typed and not {"FP16", "INT8"} & config._flags:
                return "DLA runs FP16 or INT8 layers only"
            off = [layer._name for layer in network._layers if not config._on_dla(layer)]
            if off and "GPU_FALLBACK" not in config._flags:
                return f"layers {off[:3]} cannot run on DLA and GPU fallback is off"
        return None

    def _calibrate(self, network, calibrator) -> str | None:
        """Drive the calibrator the way TensorRT's implicit INT8 does."""
        if calibrator is None:
            return "INT8 without a calibrator (or dynamic ranges)"
        batch = calibrator.get_batch_size()
        if calibrator.read_calibration_cache():
            self._api.log.append(("calibrated", "cache"))
            return None
        names, seen = list(network._inputs), 0
        while (pointers := calibrator.get_batch(names)) is not None:
            for name, ptr in zip(names, pointers, strict=True):
                dims = [batch if d == -1 else d for d in network._inputs[name]]
                self._api.cuda.view(int(ptr), dims)  # the batch fills a device buffer
            seen += 1
        if not seen:
            return "the calibrator gave no batches"
        calibrator.write_calibration_cache(memoryview(b"TRT-fake-calibration"))
        self._api.log.append(("calibrated", seen))
        return None


class _Engine(_Bound):
    """A plan that computes logits = per-class weighted channel sums."""

    _API = "ICudaEngine"

    def __init__(self, classes: int, shape) -> None:
        super().__init__()
        self._classes, self._shape = classes, tuple(shape)
        self._names = ["image", "logits"]

    def _dims(self, name):
        n, _, h, w = self._shape
        return self._shape if name == "image" else (n, self._classes, h, w)

    @property
    def num_io_tensors(self):
        return len(self._names)

    def get_tensor_name(self, index):
        return self._names[index]

    def get_tensor_mode(self, name):
        return self._api.value("TensorIOMode", "INPUT" if name == "image" else "OUTPUT")

    def get_tensor_dtype(self, name):
        return self._api.datatype("float32")

    def get_tensor_shape(self, name):
        return self._dims(name)

    def create_execution_context(self):
        return self._api.new(_Context, self)


class _Context(_Bound):
    _API = "IExecutionContext"

    def __init__(self, engine) -> None:
        super().__init__()
        self._engine, self._shapes, self._addresses = engine, {}, {}

    def set_input_shape(self, name, shape):
        if tuple(shape)[1:] != self._engine._shape[1:]:
            return False
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        n, _, h, w = self._shapes["image"]
        return (n, self._engine._classes, h, w)

    def set_tensor_address(self, name, memory):
        self._addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle):
        cuda = self._api.cuda
        x = cuda.view(self._addresses["image"], self._shapes["image"])
        n, _, h, w = self._shapes["image"]
        y = cuda.view(self._addresses["logits"], (n, self._engine._classes, h, w))
        k = self._engine._classes
        weights = np.arange(1, 3 * k + 1, dtype=np.float32).reshape(k, 3) / 10
        y[...] = np.einsum("kc,nchw->nkhw", weights, x)
        return True


class _GraphEngine(_Bound):
    """An engine that runs an ONNX graph with ONNX Runtime. Like TensorRT, it reports -1 for
    the dynamic (batch) dimensions and the static ones even where the ONNX file left them
    symbolic: output shapes come from running the graph at batch 1 and 2."""

    _API = "ICudaEngine"

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

    @property
    def num_io_tensors(self):
        return len(self._names)

    def get_tensor_name(self, index):
        return self._names[index]

    def get_tensor_mode(self, name):
        return self._api.value("TensorIOMode", "INPUT" if name in self._inputs else "OUTPUT")

    def get_tensor_dtype(self, name):
        return self._api.datatype(self._types[name])

    def get_tensor_shape(self, name):
        return self._dims[name]

    def create_execution_context(self):
        return self._api.new(_GraphContext, self)


class _GraphContext(_Bound):
    _API = "IExecutionContext"

    def __init__(self, engine) -> None:
        super().__init__()
        self._engine, self._shapes, self._addresses = engine, {}, {}

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

    def set_tensor_address(self, name, memory):
        self._addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle):
        e, cuda = self._engine, self._api.cuda
        feed = {n: cuda.view(self._addresses[n], self._shapes[n], e._np(n)).copy()
                for n in e._inputs}
        outputs = [n for n in e._names if n not in e._inputs]
        for n, y in zip(outputs, e._session.run(outputs, feed)):
            cuda.view(self._addresses[n], y.shape, e._np(n))[...] = y
        return True


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


_MODULE_CLASSES = (_Logger, _Builder, _OnnxParser, _Runtime, _Calibrator)


def candidates() -> set[str]:
    """Every real-API name a stand-in module of some release can hand out."""
    names = {"tensorrt.__version__"} | {f"tensorrt.{n}" for n in [*_DATATYPES, *_ENUMS]}
    names |= {f"tensorrt.{c._API}" for c in _MODULE_CLASSES}
    names |= {f"tensorrt.{e}.{m}" for e, members in _ENUMS.items() for m in members}
    for c in _IMPLS:
        names |= {f"tensorrt.{c._API}.{n}" for k in c.__mro__ if _is_fake(k)
                  for n in k.__dict__ if not n.startswith("_")}
    return names


def alive(name: str, version: str) -> bool:
    """Whether LIFETIMES lets release `version` have `name`."""
    here, parts = release(version), name.split(".")
    for i in range(2, len(parts) + 1):
        since, until = LIFETIMES.get(".".join(parts[:i]), (None, None))
        if since is not None and here < since or until is not None and here >= until:
            return False
    return True


@functools.cache
def exposed(version: str) -> frozenset[str]:
    """The names a stand-in module for TensorRT `version` hands out."""
    return frozenset(n for n in candidates() if alive(n, version))


def _enum_values(version: tuple) -> dict[str, dict[str, int]]:
    enums = {name: dict(members) for name, members in _ENUMS.items()}
    if version >= _TRT11:  # NvInfer.h 11.x: kSTRONGLY_TYPED = 0 (deprecated, ignored)
        enums["NetworkDefinitionCreationFlag"]["STRONGLY_TYPED"] = 0
    return enums


class _Api:
    """One stand-in module's release, names, record and shared state."""

    def __init__(self, version: str, log: list, cuda, record: ApiRecord | None, graph: bool,
                 unsupported) -> None:
        self.version, self.release = version, release(version)
        self.names = exposed(version)
        self.log, self.cuda, self.graph = log, cuda, graph
        self.record = record if record is not None else ApiRecord()
        self.unsupported = frozenset(unsupported)
        self.enums = {name: _Enum(self, name, members)
                      for name, members in _enum_values(self.release).items()}
        self._lock = threading.Lock()
        self._bound = {impl: _BoundType(impl._API, (impl,), {"_api": self, "__module__": __name__})
                       for impl in _IMPLS}

    def lookup(self, dotted: str) -> bool:
        """Whether this release has `dotted`, recorded either way."""
        ok = dotted in self.names
        with self._lock:
            (self.record.used if ok else self.record.absent).setdefault(dotted)
        return ok

    def bind(self, impl):
        return self._bound[impl]

    def new(self, impl, *args):
        return self._bound[impl](*args)

    def value(self, enum: str, member: str) -> _EnumValue:
        return self.enums[enum]._members[member]

    def datatype(self, name: str) -> _EnumValue:
        member, value, _ = _DATATYPES[name]
        return _EnumValue("DataType", member, value)


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


def module(log: list, cuda: FakeCuda, version: str = VERSION, graph: bool = False,
           record: ApiRecord | None = None, unsupported=()) -> types.ModuleType:
    """A `tensorrt` for release `version`; its parser rejects the ONNX ops in `unsupported`."""
    api = _Api(version, log, cuda, record, graph, unsupported)
    trt = _Module("tensorrt")
    d = trt.__dict__
    d["__spec__"] = importlib.machinery.ModuleSpec("tensorrt", None)
    d["_api"], d["__version__"] = api, version
    d.update({n: api.datatype(n) for n in _DATATYPES})
    d.update(api.enums)
    d.update({c._API: api.bind(c) for c in _MODULE_CLASSES})
    return trt


def install(monkeypatch, version: str = VERSION, graph: bool = False, *,
            record: ApiRecord | None = None, unsupported=()) -> tuple[list, FakeCuda]:
    """Put the fake `tensorrt` and CUDA in place for one test; with `graph`, engines it
    builds run the artifact's ONNX graph; `record` collects the real-API names used."""
    import sys

    from edgeseg.backends.tensorrt import cuda as cuda_module

    log: list = []
    cuda = FakeCuda()
    monkeypatch.setitem(sys.modules, "tensorrt",
                        module(log, cuda, version, graph, record, unsupported))
    monkeypatch.setattr(cuda_module, "open_cuda", lambda device=0: cuda)
    return log, cuda
