"""The CUDA calls the TensorRT runner and builder need (device memory, pinned host memory, a
stream, events, graph capture), through PyTorch when it has CUDA, else NVIDIA's cuda-python
(`cuda.bindings.runtime`, or `cuda.cudart` in releases before 12.6). Imported lazily."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from edgeseg.core.errors import EngineUnavailable


def _cudart():
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            if importlib.util.find_spec(name.rsplit(".", 1)[0]) is not None:
                return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    return None


def open_cuda(device: int = 0):
    """A CUDA helper on GPU `device`: torch's when torch sees CUDA, else cuda-python's."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return TorchCuda(device)
    rt = _cudart()
    if rt is not None:
        return CudaPython(rt, device)
    raise EngineUnavailable("the TensorRT backend needs CUDA memory from PyTorch with CUDA or from "
                      "cuda-python (pip install cuda-python), and an NVIDIA GPU")


class TorchCuda:
    def __init__(self, device: int) -> None:
        import torch

        if device >= torch.cuda.device_count():
            raise EngineUnavailable(f"GPU {device} not found ({torch.cuda.device_count()} visible)")
        self.torch = torch
        self.device = torch.device("cuda", device)
        torch.cuda.set_device(self.device)
        props = torch.cuda.get_device_properties(self.device)
        self.name = props.name
        self.compute_capability = f"{props.major}.{props.minor}"
        self.stream = torch.cuda.Stream(self.device)
        self.handle = self.stream.cuda_stream
        self._keep: dict[int, object] = {}  # address -> the uint8 tensor that owns it

    def make_current(self) -> None:
        """Make this GPU the calling thread's current device (CUDA keeps one per thread)."""
        self.torch.cuda.set_device(self.device)

    def alloc(self, nbytes: int) -> int:
        t = self.torch.empty(max(nbytes, 1), dtype=self.torch.uint8, device=self.device)
        self._keep[t.data_ptr()] = t
        return t.data_ptr()

    def pinned(self, shape, dtype) -> np.ndarray:
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        t = self.torch.empty(max(n, 1), dtype=self.torch.uint8, pin_memory=True)
        self._keep[t.data_ptr()] = t
        return t.numpy()[:n].view(dtype).reshape(shape)

    def free(self, ptr: int) -> None:
        """Release a buffer made by alloc or pinned (by its address)."""
        self._keep.pop(ptr, None)

    def copy(self, dst: int, src: int, nbytes: int) -> None:
        """An asynchronous copy on the stream between two buffers made by alloc/pinned."""
        with self.torch.cuda.stream(self.stream):
            self._keep[dst][:nbytes].copy_(self._keep[src][:nbytes], non_blocking=True)

    def event(self):
        return self.torch.cuda.Event(enable_timing=True)

    def record(self, event) -> None:
        event.record(self.stream)

    @staticmethod
    def elapsed_ms(start, end) -> float:
        return float(start.elapsed_time(end))

    def synchronize(self) -> None:
        self.stream.synchronize()

    def capture(self, launch):
        """A replayable CUDA graph of `launch()` (enqueues on this stream)."""
        graph = self.torch.cuda.CUDAGraph()
        with self.torch.cuda.graph(graph, stream=self.stream):
            launch()
        return graph.replay

    def close(self) -> None:
        self.stream.synchronize()
        self._keep.clear()


class CudaPython:
    def __init__(self, rt, device: int) -> None:
        self.rt = rt
        self.index = device
        self.make_current()
        props = self._check(rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
        name = props.name
        self.name = (name.split(b"\0")[0].decode() if isinstance(name, bytes) else str(name))
        self.compute_capability = f"{props.major}.{props.minor}"
        self.stream = self._check(rt.cudaStreamCreate(), "cudaStreamCreate")
        self.handle = int(self.stream)
        self._device, self._host = [], []

    def make_current(self) -> None:
        """Make this GPU the calling thread's current device (CUDA keeps one per thread)."""
        self._check(self.rt.cudaSetDevice(self.index), "cudaSetDevice")

    def _check(self, result, what: str):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:  # cudaSuccess
            raise RuntimeError(f"{what} failed: {err}")
        return rest[0] if len(rest) == 1 else (rest or None)

    def alloc(self, nbytes: int) -> int:
        ptr = int(self._check(self.rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc"))
        self._device.append(ptr)
        return ptr

    def pinned(self, shape, dtype) -> np.ndarray:
        import ctypes

        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = int(self._check(self.rt.cudaMallocHost(max(n, 1)), "cudaMallocHost"))
        self._host.append(ptr)
        buf = (ctypes.c_uint8 * max(n, 1)).from_address(ptr)
        return np.frombuffer(buf, np.uint8)[:n].view(dtype).reshape(shape)

    def free(self, ptr: int) -> None:
        """Release a buffer made by alloc or pinned (by its address)."""
        if ptr in self._device:
            self._device.remove(ptr)
            self._check(self.rt.cudaFree(ptr), "cudaFree")
        elif ptr in self._host:
            self._host.remove(ptr)
            self._check(self.rt.cudaFreeHost(ptr), "cudaFreeHost")

    def copy(self, dst: int, src: int, nbytes: int) -> None:
        self._check(self.rt.cudaMemcpyAsync(dst, src, nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyDefault,
                                            self.stream), "cudaMemcpyAsync")

    def event(self):
        return self._check(self.rt.cudaEventCreate(), "cudaEventCreate")

    def record(self, event) -> None:
        self._check(self.rt.cudaEventRecord(event, self.stream), "cudaEventRecord")

    def elapsed_ms(self, start, end) -> float:
        return float(self._check(self.rt.cudaEventElapsedTime(start, end),
                                 "cudaEventElapsedTime"))

    def synchronize(self) -> None:
        self._check(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def capture(self, launch):
        rt = self.rt
        self._check(rt.cudaStreamBeginCapture(
            self.stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal),
            "cudaStreamBeginCapture")
        launch()
        graph = self._check(rt.cudaStreamEndCapture(self.stream), "cudaStreamEndCapture")
        exe = self._check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        return lambda: self._check(rt.cudaGraphLaunch(exe, self.stream), "cudaGraphLaunch")

    def close(self) -> None:
        for p in self._device:
            self.rt.cudaFree(p)
        for p in self._host:
            self.rt.cudaFreeHost(p)
        self._device, self._host = [], []
        self.rt.cudaStreamDestroy(self.stream)
