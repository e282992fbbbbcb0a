"""The stand-in `tensorrt`'s build side (see fake_tensorrt.py): logger, calibrator, ONNX
parser, network, optimization profile, timing cache, builder config and builder."""

from __future__ import annotations

from tests.backends._fake_trt_api import (
    _DLA_LAYERS,
    _FAKE_MODULES,
    _LAYER_OF_OP,
    _TRT11,
    GRAPH_TAG,
    _Bound,
    _EnumValue,
    _expect,
    _is_fake,
    _prop,
    _pure,
    plan_bytes,
)

_FAKE_MODULES.add(__name__)


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

