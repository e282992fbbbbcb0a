"""trtexec conformance: every flag of every command `edgeseg build --print-trtexec` prints for
a TensorRT release is one that release's trtexec parses (its own option parser, read by
../shared/tensorrt/api_surface.py), and TensorRT 11 lines are strongly typed only."""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from edgeseg.cli.main import main
from tests.scripts import load_script

finder = load_script("trt_cpp_check")
SOURCES = finder.sources_dir(None)
RELEASES = [r.name for r in finder.releases(SOURCES)] if SOURCES else []
pytestmark = pytest.mark.skipif(not RELEASES, reason="TensorRT's public sources not found "
                                "(EDGESEG_TRT_SOURCES)")
WEAK_FLAGS = {"--fp16", "--int8", "--best", "--calib"}


@functools.cache
def trtexec_flags(release: str) -> frozenset[str]:
    out = subprocess.run([sys.executable, str(SOURCES / "api_surface.py"), release,
                          "--trtexec"], capture_output=True, text=True, check=True).stdout
    return frozenset(out.split())


# (name, artifact fixture, extra flags, weakly typed?)
CASES = [
    ("fp32", "local_artifact", [], False),
    ("fp32-options", "local_artifact",
     ["--workspace", "256", "--opt-level", "4", "--timing-cache", "tc.bin",
      "--version-compatible", "--device", "gpu:1"], False),
    ("fp32-ampere+", "local_artifact", ["--hardware-compat", "ampere+"], False),
    ("dynamic-batch", "logits_artifact", ["--shapes", "1/2/4"], False),
    ("int8-qdq", "int8_artifacts", [], False),
    ("fp16-weak", "local_artifact", ["--fp16"], True),
    ("fp16-dla", "local_artifact", ["--fp16", "--dla-core", "0", "--gpu-fallback"], True),
]


def command(capsys, artifact: Path, extra: list[str], release: str) -> tuple[int, list[str]]:
    rc = main(["build", str(artifact), "--print-trtexec", "--trt-version", release, *extra])
    out = capsys.readouterr().out.strip()
    return rc, (shlex.split(out) if rc == 0 else [])


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("name, fixture, extra, weak", CASES, ids=[c[0] for c in CASES])
def test_every_printed_flag_is_one_trtexec_parses(request, capsys, release, name, fixture,
                                                   extra, weak):
    artifact = request.getfixturevalue(fixture)
    if fixture == "int8_artifacts":
        artifact = artifact["openvino"]  # a symmetric (S8) Q/DQ graph
    rc, cmd = command(capsys, artifact, extra, release)
    major = int(release.split(".")[0])
    if weak and major >= 11:
        assert rc == 2, "TensorRT 11 has no weakly typed builds: the request must be refused"
        return
    assert rc == 0 and cmd[0] == "trtexec"
    flags = {c.split("=", 1)[0] for c in cmd[1:]}
    assert flags <= trtexec_flags(release), flags - trtexec_flags(release)
    if major >= 11:
        # strongly typed is TensorRT 11's only mode: its parser marks --stronglyTyped a
        # deprecated no-op, so the line carries the precision in the graph and no flag
        assert not flags & (WEAK_FLAGS | {"--stronglyTyped"})
    elif not weak:
        assert "--stronglyTyped" in flags and not flags & WEAK_FLAGS


def test_the_parsers_differ_where_tensorrt_11_dropped_weak_typing():
    """The check is only as good as the flag lists: 11.x's parser must lack what it dropped."""
    if not any(r.startswith("11.") for r in RELEASES):
        pytest.skip("no TensorRT 11 sources")
    old = trtexec_flags(RELEASES[0])
    new = trtexec_flags(next(r for r in RELEASES if r.startswith("11.")))
    assert {"--fp16", "--best"} <= old and not {"--fp16", "--best"} & new
