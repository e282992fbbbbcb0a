"""scripts/trt_cpp_check.py (run by `make test`) compiles the C++ runtime's TensorRT code
against each release's public headers; here: it finds the releases and the files, and a use
of an API a release does not have fails it (so the check can fail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


check = load_script("trt_cpp_check")
SOURCES = check.sources_dir(None)
CUDA = check.cuda_include()
pytestmark = pytest.mark.skipif(SOURCES is None or CUDA is None,
                                reason="TensorRT's public sources or CUDA headers missing")


def test_every_release_and_the_backend_are_found():
    names = [r.name for r in check.releases(SOURCES)]
    assert names[0] == "10.3.0" and "11.1" in names
    assert ROOT / "cpp/src/backend_tensorrt.cpp" in check.trt_files()


def test_an_api_a_release_lacks_fails_the_check(tmp_path):
    src = tmp_path / "uses_calibrator.cpp"
    src.write_text('#include <NvInfer.h>\n'
                   'struct C : nvinfer1::IInt8EntropyCalibrator2 {};\n')  # gone in 11.x
    releases = {r.name: r for r in check.releases(SOURCES)}
    assert check.compile_one(src, releases["10.3.0"] / "include", CUDA, "g++") == ""
    assert "IInt8EntropyCalibrator2" in check.compile_one(src, releases["11.1"] / "include",
                                                           CUDA, "g++")
