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

import functools
import importlib.machinery
import threading
import types

from tests.backends._fake_trt_api import (  # noqa: F401 (re-exported for the tests)
    _DATATYPES,
    _ENUMS,
    _FAKE_MODULES,
    _IMPLS,
    _TRT11,
    GRAPH_TAG,
    LIFETIMES,
    PLAN_TAG,
    VERSION,
    ApiRecord,
    _BoundType,
    _Enum,
    _EnumValue,
    _is_fake,
    _Module,
    plan_bytes,
    release,
)
from tests.backends._fake_trt_build import _Builder, _Calibrator, _Logger, _OnnxParser
from tests.backends._fake_trt_run import FakeCuda, _Runtime

_FAKE_MODULES.add(__name__)  # the classes _Api binds are made here

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
