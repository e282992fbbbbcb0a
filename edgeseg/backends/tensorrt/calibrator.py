"""The implicit INT8 calibrator of TensorRT 10.x's weakly typed route (deprecated in 10.1,
removed in 11; JetPack 5/6 users still rely on it): it replays the artifact's calib.cache
(written by `edgeseg quantize --target tensorrt` from edgeseg's own ranges), or feeds an
edgeseg calibration set through the artifact's own preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.backends.tensorrt import cuda as cuda_api
from edgeseg.backends.tensorrt.plan import BuildConfig, Plan, PlanError
from edgeseg.core import trtcache
from edgeseg.core.preprocess import graph_input
from edgeseg.data.calibration import load


def calibration_inputs(meta: dict, calib_dir: str) -> list[np.ndarray]:
    """Graph inputs (batches of one) from a calibration set made for this artifact's input."""

    cs = load(calib_dir)
    size, resize = list(meta["input"]["size"]), meta["input"]["resize"]
    if list(cs.size) != size or cs.resize != resize:
        raise PlanError(f"--calib {calib_dir}: made for {cs.size[0]}x{cs.size[1]} {cs.resize}, "
                        f"the artifact takes {size[0]}x{size[1]} {resize}; build a set with "
                        "`edgeseg calib` at the artifact's size")
    return [graph_input(meta["input"], im) for im in cs.images()]


def check_cache(path: Path, trt_version: str) -> bytes:
    """calib.cache bytes, after checking it parses (a header for another TensorRT version is
    only a warning there: TensorRT decides whether to use it)."""

    trtcache.read(path)  # raises CalibrationCacheError naming the bad line
    return path.read_bytes()


def make_calibrator(trt, meta: dict, cfg: BuildConfig, plan: Plan):

    cache = None
    batches: list[np.ndarray] = []
    if plan.calibration == "cache":
        cache = check_cache(Path(cfg.artifact) / "calib.cache", trt.__version__)
    else:
        batches = calibration_inputs(meta, cfg.calib)

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.cuda = cuda_api.open_cuda(cfg.device) if batches else None
            self.next = 0
            self.ptr = self.host = None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            if self.next >= len(batches):
                return None
            x = batches[self.next]
            self.next += 1
            if self.ptr is None:
                self.host = self.cuda.pinned(x.shape, x.dtype)
                self.ptr = self.cuda.alloc(self.host.nbytes)
            np.copyto(self.host, x)
            self.cuda.copy(self.ptr, self.host.ctypes.data, self.host.nbytes)
            self.cuda.synchronize()
            return [self.ptr]

        def read_calibration_cache(self):
            return cache

        def write_calibration_cache(self, blob) -> None:
            return None  # the artifact's files are written by edgeseg, not by TensorRT

    return Calibrator()
