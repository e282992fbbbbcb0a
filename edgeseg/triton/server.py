"""A local Triton Inference Server over a model repository, for the tests and the serving
benchmark: the `tritonserver` binary and Python backend that the nvidia-pytriton wheel ships
(CPU; its other backends are not in the wheel), bound to loopback on free ports, started and
stopped by the caller.

The Python backend's stub embeds libpython: it must find this interpreter's (its LIBDIR) and
this environment's packages (PYTHONPATH, and this interpreter first on PATH), or model loading
fails (with Debian's older 3.11 library: "'_thread.RLock' object has no attribute
'_recursion_count'").
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from edgeseg.core.errors import EngineUnavailable, InputError

INSTALL = ("pip install --no-deps nvidia-pytriton==0.7.0 (its numpy<2 pin does not apply to "
           "the server binary; `make serve-deps` does it)")


@dataclass(frozen=True)
class Server:
    http: str  # "127.0.0.1:port"
    grpc: str
    process: subprocess.Popen
    log: Path


def triton_root() -> Path:
    """pytriton's tritonserver folder (bin/, backends/, python_backend_stubs/)."""
    spec = importlib.util.find_spec("pytriton")
    root = Path(spec.submodule_search_locations[0]) / "tritonserver" if spec else None
    if root is None or not (root / "bin" / "tritonserver").is_file():
        raise EngineUnavailable(f"no tritonserver binary: {INSTALL}")
    return root


def _backends(root: Path, into: Path) -> Path:
    """A backend directory whose python/ holds the stub built for this Python."""
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / ver / "triton_python_backend_stub"
    if not stub.is_file():
        raise EngineUnavailable(f"pytriton has no Python backend stub for Python {ver}")
    py = into / "python"
    py.mkdir(parents=True)
    for f in (root / "backends" / "python").iterdir():
        if f.is_file():
            (py / f.name).symlink_to(f)
    (py / stub.name).symlink_to(stub)
    return into


PORT_ATTEMPTS = 3
PORT_TAKEN = ("already in use", "failed to bind", "failed to listen")  # its log, lowercased


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment() -> dict:
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH"))
                                             if p)
    package_root = str(Path(__file__).resolve().parents[2])  # the checkout holding edgeseg/
    paths = [package_root, *site.getsitepackages(), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    # The stub's embedded interpreter takes its prefix from the first python on PATH: put
    # this one first. With PYTHONPATH alone, a venv that was not activated lost onnxruntime
    # inside the stub (seen in a fresh clone's `.venv/bin/python -m pytest`).
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    return env


def ready(http: str, model: str | None = None) -> bool:
    url = f"http://{http}/v2/health/ready" if model is None else \
        f"http://{http}/v2/models/{model}/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, HTTPException):
        return False  # not up yet, or not an HTTP server at all (a port someone else took)


@contextlib.contextmanager
def serve(repo: str | Path, models: list[str], *, timeout: float = 180,
          log_dir: str | Path | None = None) -> Iterator[Server]:
    """Start tritonserver on `repo` with `models` loaded, wait until they are ready, yield
    the Server, and stop it (SIGTERM, then SIGKILL after 30 s) however the block ends."""
    repo = Path(repo)
    if not models:
        raise InputError("serve: name at least one model of the repository to load")
    for m in models:
        if not (repo / m / "config.pbtxt").is_file():
            raise InputError(f"{repo}/{m}/config.pbtxt does not exist: write the repository "
                             "with `edgeseg triton ARTIFACT --out REPO` first")
    root = triton_root()
    with tempfile.TemporaryDirectory(prefix="edgeseg-triton-") as tmp:
        backends = _backends(root, Path(tmp) / "backends")
        log = Path(log_dir or tmp) / "tritonserver.log"
        deadline = time.monotonic() + timeout
        proc = None
        try:  # however this ends (Ctrl-C during the wait too), the server goes down
            for attempt in range(PORT_ATTEMPTS):
                # a free port can be taken by another process before tritonserver binds it:
                # then it exits saying so, and it is started again on new ports
                http, grpc = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
                cmd = [str(root / "bin" / "tritonserver"),
                       f"--model-repository={repo.resolve()}",
                       f"--backend-directory={backends}", "--model-control-mode=explicit",
                       *[f"--load-model={m}" for m in models], "--exit-on-error=true",
                       "--http-address=127.0.0.1", f"--http-port={http.split(':')[1]}",
                       "--grpc-address=127.0.0.1", f"--grpc-port={grpc.split(':')[1]}",
                       "--allow-metrics=false", "--log-verbose=0"]
                with open(log, "w") as out:
                    # its own process group: a kill reaches the Python backend's stubs too
                    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            env=_environment(), start_new_session=True)
                up = False
                while not up and proc.poll() is None and time.monotonic() < deadline:
                    # ready only while ours runs: another server may hold a taken port
                    up = all(ready(http, m) for m in models) and proc.poll() is None
                    if not up:
                        time.sleep(0.5)
                tail = log.read_text(errors="replace")[-3000:]
                if up or proc.poll() is None or attempt == PORT_ATTEMPTS - 1 or \
                        not any(m in tail.lower() for m in PORT_TAKEN):
                    break
            if not up:
                why = (f"exited with code {proc.returncode}" if proc.poll() is not None
                       else f"not ready after {timeout:.0f} s")
                raise RuntimeError(f"tritonserver {why}; its log ends:\n{tail}")
            yield Server(http, grpc, proc, log)
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
