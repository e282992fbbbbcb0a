"""Refuse an image or network size that cannot fit before anything of that size is
allocated: the tensors that go into and come out of the graph alone, against the memory
this process may still use, and a per-tensor element limit. Activations are not estimated
(they depend on the model); a size that passes can still run out of memory, but one that
fails could never run, and says so instead of dying in the allocator or the OOM killer."""

from __future__ import annotations

import operator
import os
from pathlib import Path

from edgeseg.core.errors import UsageError

# ONNX Runtime, OpenVINO, TensorRT and OpenCV index a tensor's elements with 32-bit
# integers in places; a tensor with more elements than this fails or wraps around inside them.
MAX_ELEMENTS = 2**31 - 1
# Below this the check does not read /proc: a few MiB always fit, and predict calls it per
# image.
_SMALL = 64 << 20


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def _up(d: Path, top: Path):
    """d and its parents up to top."""
    while True:
        yield d
        if d == top or top not in d.parents:
            return
        d = d.parent


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limits (v2 and v1, every level up to
    the root applies), the tightest; None without a limit. A container's limit is what its
    OOM killer enforces, however much the host has."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    rooms = []
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            top, files = root, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            top, files = root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        for d in _up(top / rel.lstrip("/"), top):
            limit, used = _read_int(d / files[0]), _read_int(d / files[1])
            if limit is not None and used is not None and limit < 2**60:  # v1: 2^63 = none
                rooms.append(limit - used)
    return max(0, min(rooms)) if rooms else None


def available_memory() -> int | None:
    """Bytes of memory this process can still get: the system's MemAvailable, or less under
    a cgroup (container) limit; None where neither can be read."""
    known = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                known.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    if not known:
        try:
            known.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    room = _cgroup_room()
    if room is not None:
        known.append(room)
    return min(known) if known else None


def io_bytes(h: int, w: int, *, classes: int = 1, batch: int = 1, channels: int = 3,
             in_itemsize: int = 4, out_itemsize: int = 4) -> int:
    """Bytes of a batch x channels x h x w input plus a batch x classes x h x w output."""
    return batch * h * w * (channels * in_itemsize + classes * out_itemsize)


def check_size(h, w, *, what: str = "--size", classes: int = 1, batch: int = 1,
               channels: int = 3, in_itemsize: int = 4, out_itemsize: int = 4,
               fix: str = "choose a smaller size", available: int | None = None) -> int:
    """Raise UsageError when an h x w input (batch x channels, `in_itemsize` bytes each) and
    its batch x classes output (`out_itemsize` bytes each) cannot exist here: a tensor over
    MAX_ELEMENTS, or both together over the available memory (`available`, else measured).
    `what` names the size in the message (a flag, "image"), `fix` says what to do. Returns
    the bytes of those tensors."""
    try:
        h, w, batch = (operator.index(v) for v in (h, w, batch))  # numpy ints too
    except TypeError:
        raise UsageError(f"{what} {h}x{w}: height, width and batch must be integers") from None
    if h < 1 or w < 1 or batch < 1:
        raise UsageError(f"{what} {h}x{w}: height and width must be at least 1")
    widest = max(channels, classes)
    elements = batch * widest * h * w
    if elements > MAX_ELEMENTS:
        raise UsageError(f"{what} {h}x{w}: a {batch}x{widest}x{h}x{w} tensor has "
                         f"{elements:,} elements, over the {MAX_ELEMENTS:,} (2^31 - 1) "
                         f"a tensor may hold in the engines; {fix}")
    need = io_bytes(h, w, classes=classes, batch=batch, channels=channels,
                    in_itemsize=in_itemsize, out_itemsize=out_itemsize)
    if available is None and need >= _SMALL:
        available = available_memory()
    if available is not None and need > available:
        raise UsageError(f"{what} {h}x{w}: its input and output tensors alone need "
                         f"{_gib(need)}, more than the {_gib(available)} of memory available "
                         f"here; {fix}")
    return need
