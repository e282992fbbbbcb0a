"""Power and energy per frame, where the device has a sensor: Jetson's INA3221 rails (sysfs)
or an NVIDIA desktop GPU's board power (NVML). Without one, `PowerSampler.source` is None
and results carry no power figures: never an estimate.

The sampler reads the sensor on a background thread during the timed runs; energy per frame
is the mean power times the sampled wall time divided by the frames run in it.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

# JetPack 5/6 (Orin): the ina3221 hwmon driver, in<k>_label / in<k>_input (mV) /
# curr<k>_input (mA). JetPack 4 (Xavier, Nano): the ina3221x iio driver, rail_name_<k> /
# in_power<k>_input (mW).
HWMON_GLOB = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
IIO_GLOB = "sys/bus/i2c/drivers/ina3221x/*/iio:device*"
# The rail that measures the whole module's input, when the board has one.
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VDD_IN_TOTAL")


def _int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def jetson_rails(root: Path) -> dict[str, tuple]:
    """rail name -> ("hwmon", voltage file, current file) or ("iio", power file)."""
    rails: dict[str, tuple] = {}
    for d in sorted(root.glob(HWMON_GLOB)):
        for label in sorted(d.glob("in*_label")):
            k = label.name[2:-len("_label")]
            volt, curr = d / f"in{k}_input", d / f"curr{k}_input"
            name = label.read_text().strip()
            if volt.is_file() and curr.is_file() and name and "sum" not in name.lower():
                rails[name] = ("hwmon", volt, curr)
    for d in sorted(root.glob(IIO_GLOB)):
        for label in sorted(d.glob("rail_name_*")):
            k = label.name.rsplit("_", 1)[1]
            power = d / f"in_power{k}_input"
            if power.is_file():
                rails[label.read_text().strip()] = ("iio", power)
    return rails


def read_rails_mw(rails: dict[str, tuple]) -> dict[str, float]:
    out = {}
    for name, spec in rails.items():
        if spec[0] == "hwmon":
            mv, ma = _int(spec[1]), _int(spec[2])
            if mv is not None and ma is not None:
                out[name] = mv * ma / 1000.0
        else:
            mw = _int(spec[1])
            if mw is not None:
                out[name] = float(mw)
    return out


class PowerSampler:
    """`with PowerSampler() as p: ...run frames...` then `p.summary(frames)`."""

    def __init__(self, *, root: str | Path = "/", interval_s: float = 0.05,
                 gpu_index: int = 0) -> None:
        self.root = Path(root)
        self.interval = interval_s
        self.rails = jetson_rails(self.root)
        self.nvml = None
        self.source: str | None = None
        if self.rails:
            self.source = "jetson-ina3221"
        elif str(self.root) == "/" and importlib.util.find_spec("pynvml") is not None:
            self.nvml = _nvml_handle(gpu_index)
            self.source = "nvml" if self.nvml is not None else None
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = self._t1 = 0.0

    def read_mw(self) -> dict[str, float]:
        if self.rails:
            return read_rails_mw(self.rails)
        if self.nvml is not None:
            import pynvml

            return {"gpu_board": float(pynvml.nvmlDeviceGetPowerUsage(self.nvml))}
        return {}

    def _loop(self) -> None:
        while not self._stop.is_set():
            s = self.read_mw()
            if s:
                self.samples.append(s)
            self._stop.wait(self.interval)

    def __enter__(self) -> PowerSampler:
        self._t0 = time.perf_counter()
        if self.source:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._t1 = time.perf_counter()
        if self._thread:
            self._stop.set()
            self._thread.join()

    def summary(self, frames: int) -> dict[str, Any] | None:
        """Mean power per rail, the total, and energy per frame; None without a sensor or
        samples."""
        if not self.source or not self.samples or frames < 1:
            return None
        names = sorted(set().union(*self.samples))
        mean = {n: sum(s.get(n, 0.0) for s in self.samples) / len(self.samples) for n in names}
        total_name = next((n for n in TOTAL_RAILS if n in mean), None)
        total = mean[total_name] if total_name else sum(mean.values())
        seconds = self._t1 - self._t0
        return {"source": self.source, "samples": len(self.samples),
                "rails_mw": {n: round(v, 1) for n, v in mean.items()},
                "total_rail": total_name or "sum of rails",
                "mean_w": round(total / 1000.0, 3),
                "energy_per_frame_mj": round(total * seconds / frames, 3)}


def _nvml_handle(index: int):
    import pynvml

    try:
        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except pynvml.NVMLError:
        return None
