"""Inference engines, one folder each, described by core/capabilities.ENGINES. Every backend
package offers a `Runner`: a context manager with `infer({input_name: array}) ->
{output_name: array}`. An engine's own module is imported only in its folder, lazily.
"""

from __future__ import annotations

import importlib

from edgeseg.core.artifact import ArtifactError
from edgeseg.core.capabilities import ENGINES, FORMATS, engine, is_available
from edgeseg.core.devices import Device, parse_device
from edgeseg.core.errors import EngineUnavailable

__all__ = ["ENGINES", "get_runner", "install_hint", "is_available", "model_file", "require",
           "tools", "write_format"]


def install_hint(name: str) -> str:
    return engine(name).install


def require(name: str) -> None:
    """Raise EngineUnavailable (an ImportError) that says how to install engine `name`."""

    if not is_available(name):
        e = engine(name)
        raise EngineUnavailable(f"the {e.name} backend is not installed: {e.install}")


def inference_precisions(name: str) -> list[str]:
    """The inference precisions (ENGINES' precision_hints) engine `name` offers for float ops
    on this machine's CPU, default first; [] for an engine without the setting."""
    if not ENGINES[engine(name).name].precision_hints:
        return []
    require(name)
    return importlib.import_module(f"edgeseg.backends.{engine(name).name}").inference_precisions()


def runner_takes(name: str, option: str) -> bool:
    """Whether engine `name`'s Runner has the keyword option `option` (e.g. streams)."""
    import inspect

    require(name)
    package = importlib.import_module(f"edgeseg.backends.{engine(name).name}")
    return option in inspect.signature(package.Runner).parameters


def get_runner(name: str, model_path, *, device: str | Device | None = None, **options):
    """The Runner of engine `name` (or an alias) for a model file (the artifact directory for
    torch), not yet entered. `device` is written in the one device grammar (cpu, gpu:N, ...);
    each engine's package turns it into its own option."""
    require(name)
    package = importlib.import_module(f"edgeseg.backends.{engine(name).name}")
    if device is not None:
        options.update(package.device_options(parse_device(device)))
    return package.Runner(model_path, **options)


def model_file(meta: dict, backend: str) -> str | None:
    """The artifact file an engine runs: the first of its table entry's files that the
    artifact has (an OpenVINO IR before model.onnx); None for torch, which rebuilds the
    module; for TensorRT the engine built for this GPU and TensorRT version."""
    e = engine(backend)
    files = meta["files"]
    for file in e.files:
        if file == "":
            return None
        if "<tag>" in file:
            return _engine_plan(meta, e.name)
        if file in files:
            return file
    raise ArtifactError(f"the artifact has no model file {e.name} can run "
                        f"(files: {', '.join(files) or 'none'})")


def _engine_plan(meta: dict, name: str) -> str:
    require(name)
    package = importlib.import_module(f"edgeseg.backends.{name}")
    return package.select_engine_file(meta)


def tools(name: str):
    """The model tools an engine's folder offers (quantizers, format writers)."""
    return importlib.import_module(f"edgeseg.backends.{engine(name).name}.tools")


def write_format(fmt: str, onnx_path, directory, *, fp16: bool) -> tuple[str, ...]:
    """Write format `fmt` (core/capabilities.FORMATS) of the ONNX graph at `onnx_path` into
    `directory` (FP16 weights with `fp16`); returns the files it consists of."""
    f = FORMATS[fmt]
    if f.engine is not None:
        tools(f.engine).convert(onnx_path, directory, fp16=fp16)
    return f.files
