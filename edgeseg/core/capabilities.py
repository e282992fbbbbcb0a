"""Capabilities as data: engines, quantization targets and precisions. The CLI's choices,
Segmenter's automatic choice, the benchmark matrix, lint, sysinfo, the docs' tables, the
tests' parameters and the C++ runtime's generated header all read these tables; nothing
else lists them again."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from edgeseg.core.errors import UsageError


@dataclass(frozen=True)
class Engine:
    name: str
    aliases: tuple[str, ...]
    module: str  # the Python module that must be importable
    files: tuple[str, ...]  # artifact files it runs, preferred first ("" = the artifact itself)
    precisions: tuple[str, ...]
    devices: str  # what --device names for this engine
    install: str
    runtime: bool  # deployable: Segmenter and the C++ runtime can choose it
    cpp: bool  # the C++ runtime has it
    summary: str
    cpu: bool = False  # runs the ONNX graph on any CPU (CPU_ENGINES)
    title: str = ""  # how messages name it
    # inference precisions it can run a graph's float ops in (its own names), default first;
    # which ones a device offers, its backend package's inference_precisions() says
    precision_hints: tuple[str, ...] = ()


ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("tensorrt", ("trt",), "tensorrt", ("model.<tag>.engine",), ("fp32", "fp16", "int8"),
           "GPU index (0, 1, ...)",
           "on Jetson it comes with JetPack (the python3-libnvinfer package); on a desktop GPU "
           "install NVIDIA's packages (pip install tensorrt --extra-index-url "
           "https://pypi.nvidia.com, or the TensorRT tar/deb from developer.nvidia.com)",
           runtime=True, cpp=True, summary="NVIDIA GPUs and Jetson: the engine `edgeseg build` "
           "makes for one GPU and TensorRT version", title="TensorRT"),
    Engine("openvino", ("ov",), "openvino", ("model.xml", "model.onnx"), ("fp32", "fp16", "int8"),
           "OpenVINO device name (CPU, GPU, NPU)", "pip install openvino",
           runtime=True, cpp=True, summary="Intel CPUs, GPUs and NPUs: the IR, else the ONNX "
           "graph", cpu=True, title="OpenVINO", precision_hints=("f32", "bf16", "f16")),
    Engine("onnxruntime", ("ort",), "onnxruntime", ("model.onnx",), ("fp32", "fp16", "int8"),
           "cpu or cuda", "pip install onnxruntime",
           runtime=True, cpp=False, summary="any CPU (and CUDA with onnxruntime-gpu): the ONNX "
           "graph", cpu=True, title="ONNX Runtime"),
    Engine("torch", ("pytorch",), "torch", ("",), ("fp32",), "cpu or cuda",
           "pip install torch", runtime=False, cpp=False,
           summary="the PyTorch module rebuilt from the artifact's checkpoint: the reference",
           title="PyTorch"),
)}
# Segmenter's automatic choice, fastest first where it can run (an INT8 graph's own
# calibration target goes first).
AUTO_ORDER = tuple(e.name for e in ENGINES.values() if e.runtime)
ALIASES = {alias: e.name for e in ENGINES.values() for alias in (e.name, *e.aliases)}
# The engines every export is checked in and every INT8 graph is compared across (the
# reference first): they read the ONNX graph on any CPU, so every machine can run them.
CPU_ENGINES = ("onnxruntime", "openvino")
assert all(ENGINES[n].cpu for n in CPU_ENGINES)
# Python packages whose versions every artifact and result file records.
VERSIONED_PACKAGES = ("edgeseg", "torch", "onnx", "onnxsim", "nncf",
                      *(e.module for e in ENGINES.values()))


@dataclass(frozen=True)
class Format:
    """A file format `edgeseg export --format` writes next to model.onnx."""
    name: str
    files: tuple[str, ...]
    engine: str | None  # whose tools convert the ONNX graph (None: the ONNX graph itself)
    summary: str


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", ("model.onnx",), None, "the ONNX graph (always written)"),
    Format("openvino", ("model.xml", "model.bin"), "openvino",
           "OpenVINO IR, what OpenVINO users deploy"),
)}

PRECISIONS = {
    "fp32": "FP32 graph: the baseline every other precision is judged against",
    "fp16": "FP16 weights and math, FP32 inputs and outputs (for GPUs; CPUs run it slower)",
    "int8": "symmetric Q/DQ INT8 graph calibrated for one target (edgeseg quantize)",
}


@dataclass(frozen=True)
class Target:
    """How an INT8 graph is quantized for one engine, and where its accuracy is judged."""
    name: str
    activations: str  # int8 | uint8
    symmetric: bool
    weight_bits: int
    judged_in: str  # engine that runs the accuracy check
    mode: str  # "kernels": the engine's fused integer kernels; "reference": Q/DQ as written
    routes: tuple[str, ...]  # qdq: ONNX Q/DQ (quant/int8.py); nncf: NNCF's IR (nncf_route.py)
    summary: str
    judged_words: str  # how a refusal names the arithmetic it was judged in
    placement: str  # quant/rules.py: compute-inputs (the engine quantizes inside its
    # kernels) or integer-kernels (Q/DQ around every layer ONNX Runtime runs in integers)


# weight_bits 7 is the overflow fix for CPUs without VNNI (quant/config.py says why);
# TensorRT accumulates exactly, and its arithmetic is the Q/DQ graph as written, which ONNX
# Runtime reproduces with its fused kernels off.
TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("tensorrt", "int8", True, 8, "onnxruntime", "reference", ("qdq",),
           "symmetric S8 activations and weights, what TensorRT's explicit Q/DQ requires",
           "ONNX Runtime computing the Q/DQ arithmetic as written (what TensorRT runs)",
           "compute-inputs"),
    Target("openvino", "int8", True, 7, "openvino", "kernels", ("qdq", "nncf"),
           "symmetric S8, 7-bit weights: fast in OpenVINO on CPUs with or without VNNI",
           "OpenVINO with its INT8 kernels", "compute-inputs"),
    Target("onnxruntime", "uint8", False, 7, "onnxruntime", "kernels", ("qdq",),
           "asymmetric U8 activations: what ONNX Runtime's CPU integer kernels run fast",
           "ONNX Runtime with its INT8 kernels", "integer-kernels"),
)}


def engine(name: str) -> Engine:
    """The engine called `name` or one of its aliases; an error listing the choices."""
    key = ALIASES.get(name.lower()) if isinstance(name, str) else None
    if key is None:
        choices = ", ".join(f"{e.name} ({'/'.join(e.aliases)})" for e in ENGINES.values())
        raise UsageError(f"unknown engine {name!r}; choose one of {choices}")
    return ENGINES[key]


def engine_names(*, runtime_only: bool = False) -> tuple[str, ...]:
    return tuple(n for n, e in ENGINES.items() if e.runtime or not runtime_only)


def is_available(name: str) -> bool:
    """Whether an engine's Python module can be imported here (find_spec: nothing is loaded)."""
    return importlib.util.find_spec(engine(name).module) is not None
