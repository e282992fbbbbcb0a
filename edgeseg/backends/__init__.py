"""Inference engines, one folder each. Every backend module offers `is_available()` (a
`find_spec` check, never a swallowed import error) and a `Runner`: a context manager with
`infer({input_name: array}) -> {output_name: array}`. Engines are imported lazily, only here.
"""

from __future__ import annotations

import importlib.util

# name -> (python module that must be importable, how to get it when it is missing)
ENGINES = {
    "onnxruntime": ("onnxruntime", "pip install onnxruntime"),
    "openvino": ("openvino", "pip install openvino"),
    "torch": ("torch", "pip install torch"),
    "tensorrt": ("tensorrt", "on Jetson it comes with JetPack (the python3-libnvinfer "
                 "package); on a desktop GPU install NVIDIA's packages (pip install tensorrt "
                 "--extra-index-url https://pypi.nvidia.com, or the TensorRT tar/deb from "
                 "developer.nvidia.com)"),
}


def is_available(name: str) -> bool:
    module, _ = ENGINES[name]
    return importlib.util.find_spec(module) is not None


def install_hint(name: str) -> str:
    return ENGINES[name][1]


def require(name: str) -> None:
    """Raise an ImportError that says how to install engine `name` when it is missing."""
    if name not in ENGINES:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(ENGINES)}")
    if not is_available(name):
        raise ImportError(f"the {name} backend is not installed: {install_hint(name)}")


def get_runner(name: str, model_path, **options):
    """The Runner of backend `name` for a model file (the artifact directory for torch),
    not yet entered."""
    require(name)
    if name == "onnxruntime":
        from edgeseg.backends.onnxruntime import Runner
    elif name == "torch":
        from edgeseg.backends.torch import Runner
    elif name == "tensorrt":
        from edgeseg.backends.tensorrt import Runner
    else:
        from edgeseg.backends.openvino import Runner
    return Runner(model_path, **options)


def model_file(meta: dict, backend: str) -> str | None:
    """The artifact file a backend runs (None for torch, which rebuilds the module): the
    OpenVINO IR when the artifact has one (what OpenVINO users deploy), else model.onnx."""
    from edgeseg.export.artifact import ArtifactError

    files = meta["files"]
    if backend == "torch":
        return None
    if backend == "tensorrt":
        return tensorrt_engine_file(meta)
    if backend == "openvino" and "model.xml" in files:
        return "model.xml"
    if "model.onnx" in files:
        return "model.onnx"
    raise ArtifactError(f"the artifact has no model file {backend} can run "
                        f"(files: {', '.join(files) or 'none'})")


def tensorrt_engine_file(meta: dict) -> str:
    """The artifact's engine that this machine's TensorRT and GPU can run (EngineMismatch,
    a RuntimeError, saying why none can)."""
    from edgeseg.backends.tensorrt.plan import select_build

    require("tensorrt")
    import tensorrt

    from edgeseg.backends.tensorrt.cuda import open_cuda

    cuda = open_cuda(0)
    try:
        return select_build(meta, tensorrt.__version__, cuda.compute_capability)["file"]
    finally:
        cuda.close()
