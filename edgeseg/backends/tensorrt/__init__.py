"""TensorRT backend: engine builder (builder.py), runner (runner.py), and the parts that need
no GPU (plan.py: routes, flags, profiles, engine tags, trtexec command lines, build records
and the checks that refuse an engine built for another TensorRT version or GPU). TensorRT and
CUDA are imported only inside builder.py, runner.py, calibrator.py and cuda.py, lazily."""

from __future__ import annotations

import importlib.util

from edgeseg.backends.tensorrt import cuda as cuda_api
from edgeseg.backends.tensorrt.plan import select_build
from edgeseg.backends.tensorrt.runner import Runner
from edgeseg.core.devices import Device
from edgeseg.core.errors import UsageError

__all__ = ["Runner", "device_options", "installed_version", "select_engine_file"]


def select_engine_file(meta: dict) -> str:
    """The artifact's engine that this machine's TensorRT and GPU can run (EngineMismatch
    saying why none can)."""
    import tensorrt


    cuda = cuda_api.open_cuda(0)
    try:
        return select_build(meta, tensorrt.__version__, cuda.compute_capability)["file"]
    finally:
        cuda.close()


def installed_version() -> str | None:
    """The TensorRT version importable here, None when there is none."""
    if importlib.util.find_spec("tensorrt") is None:
        return None
    import tensorrt

    return tensorrt.__version__


def device_options(device: Device) -> dict:
    """Runner options for a device of the one grammar (core/devices.py): a GPU index."""
    if device.kind != "gpu":
        raise UsageError(f"--device {device}: TensorRT runs on an NVIDIA GPU; write gpu:N")
    return {"device": device.index or 0}
