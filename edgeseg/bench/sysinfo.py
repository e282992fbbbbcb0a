"""The system profile stored in every benchmark result: what ran it (CPU, GPU, Jetson module
and power mode, software versions, git revision).

Everything is read from files and tools the system provides, never guessed: a field that
cannot be read is None (or absent for a whole device class: no `gpu` without a GPU, no
`jetson` off a Jetson). `root` redirects every absolute system path (for fixture trees
in tests); commands (nvidia-smi, git) run only when `root` is "/".
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from edgeseg.core.artifact import dist_version
from edgeseg.core.capabilities import VERSIONED_PACKAGES
from edgeseg.core.host import ISA_FEATURES, isa  # noqa: F401 (re-exported)

PACKAGES = (*VERSIONED_PACKAGES, "cuda-python", "numpy")
# CPU flags that decide which kernels an engine can use (SIMD width, INT8 dot products, bf16)
CPU_FLAG_PREFIXES = ("avx", "amx", "fma", "f16c")
CPU_FLAG_NAMES = ("sse4_2", "neon", "asimd", "asimddp", "asimdhp", "sve", "i8mm", "bf16")

# nvpmodel's status file holds the active mode id ("pmode:0002 fmode:..."); the mode's name
# lives in the board's nvpmodel.conf ("< POWER_MODEL ID=2 NAME=15W >").
NVPMODEL_STATUS = "var/lib/nvpmodel/status"
NVPMODEL_CONF = "etc/nvpmodel.conf"
GPU_FREQ_GLOBS = ("sys/devices/gpu.0/devfreq/*/cur_freq",
                  "sys/devices/platform/*.gpu/devfreq/*/cur_freq",
                  "sys/devices/platform/bus@0/*.gpu/devfreq/*/cur_freq",
                  "sys/devices/*.ga10b/devfreq/*/cur_freq",
                  "sys/devices/platform/*.ga10b/devfreq/*/cur_freq")


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _run(cmd: list[str], cwd: str | None = None) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def cpu_info(root: Path = Path("/")) -> dict[str, Any]:
    text = _read(root, "proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key not in fields:
            fields[key] = value.strip()
    model = fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or \
        platform.processor() or None
    flags = (fields.get("flags") or fields.get("features") or "").split()
    keep = sorted(f for f in flags if f.startswith(CPU_FLAG_PREFIXES) or "vnni" in f
                  or f in CPU_FLAG_NAMES)
    logical = len(re.findall(r"^processor\s*:", text, flags=re.M)) or os.cpu_count()
    return {"model": model, "arch": platform.machine(), "flags": keep,
            "logical_cores": logical,
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            and str(root) == "/" else None}


def memory_total_mib(root: Path = Path("/")) -> int | None:
    m = re.search(r"^MemTotal:\s+(\d+) kB", _read(root, "proc/meminfo") or "", flags=re.M)
    return int(m.group(1)) // 1024 if m else None


def versions() -> dict[str, str | None]:

    return {**{d: dist_version(d) for d in PACKAGES}, "python": platform.python_version()}


def git_revision() -> str | None:
    """The checkout's commit (with '-dirty' when it has local changes), if edgeseg runs from
    a git checkout."""
    here = str(Path(__file__).resolve().parent)
    rev = _run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here)
    if rev is None:
        return None
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here)
    return rev + ("-dirty" if dirty else "")


def gpu_info(root: Path = Path("/")) -> list[dict[str, Any]] | None:
    """Desktop/server NVIDIA GPUs from nvidia-smi (name, driver, CUDA version the driver
    supports, compute capability, memory); None without one."""
    if str(root) != "/":
        return None
    q = _run(["nvidia-smi", "--query-gpu=index,name,driver_version,compute_cap,memory.total",
              "--format=csv,noheader,nounits"])
    if not q:
        return None
    head = _run(["nvidia-smi"]) or ""
    m = re.search(r"CUDA Version:\s*([\d.]+)", head)
    gpus = []
    for line in q.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue
        gpus.append({"index": int(parts[0]) if parts[0].isdigit() else parts[0],
                     "name": parts[1], "driver": parts[2], "compute_capability": parts[3],
                     "memory_mib": int(parts[4]) if parts[4].isdigit() else None,
                     "cuda_driver_version": m.group(1) if m else None})
    return gpus or None


def jetson_info(root: Path = Path("/")) -> dict[str, Any] | None:
    """Jetson module, L4T release, nvpmodel power mode and clocks; None off a Jetson."""
    release = _read(root, "etc/nv_tegra_release")
    model = _read(root, "proc/device-tree/model")
    if release is None and (model is None or "jetson" not in model.lower()):
        return None
    l4t = None
    if release:
        # "# R36 (release), REVISION: 3.0, GCID: ..., BOARD: generic, EABI: aarch64, ..."
        m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release)
        if m:
            l4t = f"{m.group(1)}.{m.group(2)}"
    mode_id = mode_name = None
    status = _read(root, NVPMODEL_STATUS)
    if status:
        m = re.search(r"pmode:\s*(\d+)", status)
        mode_id = int(m.group(1)) if m else None
    conf = _read(root, NVPMODEL_CONF)
    if conf and mode_id is not None:
        for m in re.finditer(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)\s*>", conf):
            if int(m.group(1)) == mode_id:
                mode_name = m.group(2)
    cpu_khz = []
    for i in range(64):
        v = _read(root, f"sys/devices/system/cpu/cpu{i}/cpufreq/scaling_cur_freq")
        if v is None:
            break
        cpu_khz.append(int(v) if v.isdigit() else None)
    gpu_hz = None
    for pattern in GPU_FREQ_GLOBS:
        hits = sorted(root.glob(pattern))
        if hits:
            v = hits[0].read_text().strip()
            gpu_hz = int(v) if v.isdigit() else None
            break
    return {"model": model, "l4t": l4t, "jetpack": jetpack_for_l4t(l4t),
            "nvpmodel": {"id": mode_id, "name": mode_name} if mode_id is not None else None,
            "cpu_mhz": [k // 1000 if k else None for k in cpu_khz] or None,
            "gpu_mhz": gpu_hz // 1_000_000 if gpu_hz else None}


# L4T release -> JetPack, from NVIDIA's JetPack release notes (the JetPack 5 and 6 releases
# that edgeseg's TensorRT 10 support concerns; any other reports None rather than a guess).
JETPACK = {"35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2",
           "35.5.0": "5.1.3", "35.6.0": "5.1.4", "35.6.1": "5.1.5", "36.2.0": "6.0 DP",
           "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1"}


def jetpack_for_l4t(l4t: str | None) -> str | None:
    if not l4t:
        return None
    parts = (l4t.split(".") + ["0", "0"])[:3]
    return JETPACK.get(".".join(parts))


def device_name(profile: dict[str, Any]) -> str:
    """A file-system-safe device label for results/<device>/: the Jetson module, else the
    first GPU, else the CPU model, plus the power mode on Jetson."""
    if profile.get("jetson"):
        j = profile["jetson"]
        name = j.get("model") or "jetson"
        if j.get("nvpmodel") and j["nvpmodel"].get("name"):
            name += f"-{j['nvpmodel']['name']}"
    elif profile.get("gpu"):
        name = profile["gpu"][0]["name"]
    else:
        name = profile["cpu"].get("model") or profile["cpu"].get("arch") or "unknown"
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", name).strip("-").lower() or "unknown"


def system_profile(*, threads: int | None = None, root: str | Path = "/") -> dict[str, Any]:
    root = Path(root)
    profile: dict[str, Any] = {
        "hostname": platform.node() if str(root) == "/" else None,
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_info(root), "memory_mib": memory_total_mib(root), "threads": threads,
        "versions": versions(), "git": git_revision() if str(root) == "/" else None,
    }
    gpus = gpu_info(root)
    if gpus:
        profile["gpu"] = gpus
    jetson = jetson_info(root)
    if jetson:
        profile["jetson"] = jetson
    return profile
