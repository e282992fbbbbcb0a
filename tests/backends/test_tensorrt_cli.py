"""`edgeseg build --backend tensorrt` where TensorRT is absent: a clear message naming how to
get it, the trtexec command still printed, and bad artifacts refused first."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from edgeseg.cli.main import main

NO_TRT = importlib.util.find_spec("tensorrt") is None


@pytest.mark.skipif(not NO_TRT, reason="TensorRT is installed: this checks the message "
                    "users without it get")
def test_without_tensorrt_the_message_says_how_to_get_it(local_artifact, capsys):
    assert main(["build", str(local_artifact), "--backend", "tensorrt"]) == 3  # engine missing
    err = capsys.readouterr().err
    assert "JetPack" in err and "pypi.nvidia.com" in err and "--print-trtexec" in err


def test_print_trtexec_without_tensorrt(local_artifact, capsys):
    assert main(["build", str(local_artifact), "--print-trtexec", "--trt-version", "10.3.0",
                 "--workspace", "256", "--timing-cache", "tc.bin"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("trtexec --onnx=model.onnx --saveEngine=model.")
    assert "--stronglyTyped" in out and "--memPoolSize=workspace:256M" in out
    assert main(["build", str(local_artifact), "--print-trtexec", "--fp16",
                 "--trt-version", "11.0.0"]) == 2  # a request that cannot work
    assert "strongly typed networks only" in capsys.readouterr().err


def test_bad_artifacts_are_refused_before_tensorrt(local_artifact, int8_artifacts, tmp_path,
                                                   capsys):
    bad = tmp_path / "bad"
    shutil.copytree(local_artifact, bad)
    with open(bad / "model.onnx", "ab") as f:
        f.write(b"\0")
    assert main(["build", str(bad), "--print-trtexec"]) == 2
    assert "sha256" in capsys.readouterr().err
    # an asymmetric (UINT8, zero point) Q/DQ graph: the lint names the nodes and the fix
    assert main(["build", str(int8_artifacts["onnxruntime"]), "--print-trtexec"]) == 2
    err = capsys.readouterr().err
    assert "TensorRT's ONNX parser would reject model.onnx" in err and "--target tensorrt" in err


def test_segmenter_skips_tensorrt_with_the_reason(local_artifact, tmp_path):
    from edgeseg.runtime import choose_backend

    meta = json.loads((local_artifact / "meta.json").read_text())
    meta["builds"] = [{"backend": "tensorrt", "file": "model.x.engine", "tensorrt": "10.3.0",
                       "device": "Orin", "compute_capability": "8.7"}]
    name, _, why = choose_backend(meta)
    assert name != "tensorrt" and "tensorrt:" in why


@pytest.mark.skipif(not NO_TRT, reason="TensorRT is installed")
def test_compare_with_tensorrt_named_but_absent(local_artifact, capsys):
    assert main(["compare", str(local_artifact), "--backends", "onnxruntime", "tensorrt"]) == 3
    assert "JetPack" in capsys.readouterr().err
