"""PyTorch eager backend: the artifact's FP32 model rebuilt from its meta (checkpoint or
registry seed), as a user's own PyTorch code would run it. It is every benchmark table's
"before" row; `compile=True` runs it through `torch.compile` instead (where that works), and
`half=True` runs it in FP16 (`module.half()`: FP16 weights and math; the FP32 input is cast
on the device and the output cast back, so callers see the FP32 tensors an FP16 artifact
takes and gives).

On CUDA, `infer_timed` splits one call into copy in / compute / copy out with CUDA events
(host timers around asynchronous launches would measure only the launch).

Several threads may call one runner: the eval-mode module changes no state in forward, and
each call has its own tensors and CUDA events. A `torch.compile`d module is called under a
lock instead, because dynamo compiles (and recompiles on new shapes) inside the first call
with process-wide state that is not safe to enter from two threads."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import numpy as np

from edgeseg.backends.common import GraphIO, RunnerClosed, load_failed, spec
from edgeseg.checkpoint import build_reference
from edgeseg.core.artifact import read_meta
from edgeseg.core.devices import Device
from edgeseg.core.errors import EdgesegError, EngineUnavailable, UsageError


class Runner(GraphIO):
    """`with Runner(artifact_dir) as r: r.infer({"input": x})`."""

    def __init__(self, artifact_dir: str | Path, *, device: str = "cpu",
                 threads: int | None = None, compile: bool = False, half: bool = False,
                 output_names: list[str] | None = None, int8_kernels: bool = True) -> None:
        # output_names, int8_kernels: the uniform runner signature; an FP32 module has neither.
        self.artifact = Path(artifact_dir)
        self.device = device
        self.threads = threads
        self.compile = compile
        self.half = half
        self.module = None
        self._lock = threading.Lock() if compile else contextlib.nullcontext()

    def __enter__(self) -> Runner:
        import torch

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineUnavailable(f"torch backend: device {self.device!r} asked for, but this "
                               "torch build sees no CUDA GPU; use --device cpu")
        if self.threads:
            torch.set_num_threads(self.threads)
        meta = read_meta(self.artifact)
        self.input_name, self.output_name = meta["input"]["name"], meta["output"]["name"]
        # No graph to ask: the module is rebuilt to produce what meta.json describes.
        self._inputs = {self.input_name: spec(meta["input"]["shape"], meta["input"]["dtype"])}
        self._outputs = {self.output_name: spec(meta["output"]["shape"],
                                                meta["output"]["dtype"])}
        try:
            module = build_reference(meta["model"], meta["input"], meta["output"]["kind"])
        except EdgesegError as e:  # its message does not say which artifact
            raise type(e)(f"{self.artifact}: {e}") from e
        except Exception as e:  # an unreadable checkpoint, options the model does not take
            raise load_failed(self.artifact, "PyTorch", e) from e
        if self.device.startswith("cuda"):
            # The peak device_peak_mib reports is this runner's, not that of every model
            # the process ran before it.
            torch.cuda.reset_peak_memory_stats(self.device)
        module = module.to(self.device).eval()
        if self.half:
            module = module.half()
        if self.compile:
            try:
                module = torch.compile(module)
            except Exception as e:  # torch.compile raises backend-specific types
                raise RuntimeError(f"torch.compile failed here: {e}") from e
        self.module = module
        self.torch = torch
        return self

    def __exit__(self, *exc) -> None:
        self.module = None

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.infer_timed(inputs)[0]

    def infer_timed(self, inputs: dict[str, np.ndarray]
                    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """(outputs, phase times in ms): on CUDA copy_in / compute / copy_out from CUDA
        events; on CPU only compute (the module reads host memory: there is no copy)."""
        module = self.module
        if module is None:
            raise RunnerClosed("PyTorch")
        with self._lock:
            return self._infer(module, inputs)

    def _infer(self, module, inputs: dict[str, np.ndarray]
               ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(inputs[self.input_name]))
        if not self.device.startswith("cuda"):
            t0 = time.perf_counter()
            with torch.inference_mode():
                y = self._forward(module, x)
            ms = (time.perf_counter() - t0) * 1000.0
            return {self.output_name: y.numpy()}, {"compute": ms}
        # The current CUDA device is per thread: name it, or a second thread would record
        # its events on GPU 0.
        with torch.cuda.device(self.device):
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
            ev[0].record()
            xd = x.pin_memory().to(self.device, non_blocking=True)
            ev[1].record()
            with torch.inference_mode():
                y = self._forward(module, xd)
            ev[2].record()
            host = y.to("cpu", non_blocking=True)
            ev[3].record()
            ev[3].synchronize()
        return {self.output_name: host.numpy()}, {
            "copy_in": ev[0].elapsed_time(ev[1]), "compute": ev[1].elapsed_time(ev[2]),
            "copy_out": ev[2].elapsed_time(ev[3])}

    def _forward(self, module, x):
        # The casts belong to the compute phase: the copies move the FP32 tensors the
        # graph's interface has, as with every other engine.
        if not self.half:
            return module(x)
        y = module(x.half())
        return y.float() if y.is_floating_point() else y

    def device_peak_mib(self) -> float | None:
        if self.device.startswith("cuda"):
            return self.torch.cuda.max_memory_allocated(self.device) / 2**20
        return None


def device_options(device: Device) -> dict:
    """Runner options for a device of the one grammar (core/devices.py)."""
    if device.kind == "cpu":
        return {"device": "cpu"}
    if device.kind == "gpu":
        return {"device": f"cuda:{device.index or 0}"}
    raise UsageError(f"--device {device}: PyTorch runs on cpu or gpu[:N]")
