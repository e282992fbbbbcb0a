"""The stand-in `tensorrt`'s core (see fake_tensorrt.py): release numbers and plan bytes,
the enum and dtype tables, and the strict, recording layer (`_Bound`, `_Enum`, `_Module`)
that hands out only the names a release has and records each one."""

from __future__ import annotations

import re
import struct
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


# The modules whose classes are the stand-in's own (each one adds itself), as against
# subclasses defined elsewhere (edgeseg's calibrator).
_FAKE_MODULES: set[str] = {__name__}


def _is_fake(klass) -> bool:
    return klass.__dict__.get("__module__") in _FAKE_MODULES


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

