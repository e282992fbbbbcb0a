"""TensorRT backend: engine builder (builder.py), runner (runner.py), and the parts that need
no GPU (plan.py: routes, flags, profiles, engine tags, trtexec command lines, build records
and the checks that refuse an engine built for another TensorRT version or GPU). TensorRT and
CUDA are imported only inside builder.py, runner.py, calibrator.py and cuda.py, lazily."""

from __future__ import annotations

import importlib.util


def is_available() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def Runner(model_path, **options):  # noqa: N802 (the uniform backend Runner entry point)
    from edgeseg.backends.tensorrt.runner import Runner as _Runner

    return _Runner(model_path, **options)
