"""`edgeseg triton`: model repositories whose every config.pbtxt parses as Triton's own
ModelConfig (tritonclient's model_config_pb2), with the files and names Triton expects."""

from __future__ import annotations

import json
import shutil

import pytest

from edgeseg.cli.main import main
from edgeseg.core.artifact import read_meta, sha256
from edgeseg.core.errors import InputError, OutputExists, UsageError
from edgeseg.triton.repository import RepoConfig, write

mc = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")


def parse(path):
    """The config as Triton reads it: protobuf text format into ModelConfig (an unknown
    field or a wrong type is an error)."""
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def test_dynamic_batch_repository(logits_artifact, tmp_path):
    logs = []
    written = write(RepoConfig(str(logits_artifact), str(tmp_path / "repo")),
                    log=logs.append)
    assert sorted(written) == ["bisenetv2", "bisenetv2_onnxruntime", "bisenetv2_openvino"]
    meta = read_meta(logits_artifact)
    names = meta["classes"]["names"]
    for name, backend in (("bisenetv2_onnxruntime", "onnxruntime"),
                          ("bisenetv2_openvino", "openvino")):
        c = parse(tmp_path / "repo" / name / "config.pbtxt")
        assert (c.name, c.backend, c.max_batch_size) == (name, backend, 8)
        (i,), (o,) = c.input, c.output
        assert (i.name, i.data_type, list(i.dims)) == ("input", mc.TYPE_FP32, [3, 32, 64])
        assert (o.name, o.data_type, list(o.dims)) == ("logits", mc.TYPE_FP32, [8, 32, 64])
        assert o.label_filename == "labels.txt"
        assert list(c.dynamic_batching.preferred_batch_size) == [4, 8]
        assert c.dynamic_batching.max_queue_delay_microseconds == 2000
        (g,) = c.instance_group
        assert (g.count, g.kind) == (1, mc.ModelInstanceGroup.KIND_CPU)
        labels = (tmp_path / "repo" / name / "labels.txt").read_text().splitlines()
        assert labels == names
    repo = tmp_path / "repo"
    assert sha256(repo / "bisenetv2_onnxruntime/1/model.onnx") == meta["files"]["model.onnx"]
    assert sha256(repo / "bisenetv2_openvino/1/model.xml") == meta["files"]["model.xml"]
    assert sha256(repo / "bisenetv2_openvino/1/model.bin") == meta["files"]["model.bin"]
    seg = parse(repo / "bisenetv2" / "config.pbtxt")
    assert (seg.backend, seg.max_batch_size) == ("python", 8)
    assert [(t.name, t.data_type, list(t.dims)) for t in seg.input] == \
        [("image", mc.TYPE_UINT8, [-1, -1, 3])]
    assert [(t.name, t.data_type, list(t.dims)) for t in seg.output] == \
        [("labels", mc.TYPE_UINT8, [-1, -1])]
    assert seg.parameters["artifact"].string_value == "artifact"
    assert seg.parameters["backend"].string_value == "auto"
    assert (repo / "bisenetv2/1/model.py").is_file()
    assert read_meta(repo / "bisenetv2/1/artifact") == meta  # a verified copy
    assert logs[-1] == f"wrote {repo}"


def test_fixed_batch_artifact_gets_full_shapes_and_no_batcher(local_artifact, tmp_path):
    logs = []
    write(RepoConfig(str(local_artifact), str(tmp_path / "repo"), backends=("onnxruntime",),
                     name="seg net"), log=logs.append)
    c = parse(tmp_path / "repo" / "seg_net_onnxruntime" / "config.pbtxt")
    assert c.max_batch_size == 0 and not c.HasField("dynamic_batching")
    assert list(c.input[0].dims) == [1, 3, 32, 64]
    assert any("fixed batch" in m and "--dynamic batch" in m for m in logs)


def _with_engine(src, tmp_path, profile_max: int):
    """A copy of the artifact with a TensorRT build record (the bytes are a stand-in: no
    engine can be built here, and the writer only copies it)."""
    art = tmp_path / "with-engine"
    shutil.copytree(src, art)
    (art / "model.h100-sm90-trt10.13.3.engine").write_bytes(b"engine bytes")
    meta = json.loads((art / "meta.json").read_text())
    meta["builds"] = [{"backend": "tensorrt", "file": "model.h100-sm90-trt10.13.3.engine",
                       "tensorrt": "10.13.3", "device": "NVIDIA H100", "compute_capability":
                       "9.0", "profile": {"input": [[1, 3, 32, 64], [2, 3, 32, 64],
                                                    [profile_max, 3, 32, 64]]}}]
    (art / "meta.json").write_text(json.dumps(meta))
    return art


def test_tensorrt_model_from_the_engine_within_its_profile(logits_artifact, tmp_path):
    art = _with_engine(logits_artifact, tmp_path, profile_max=4)
    write(RepoConfig(str(art), str(tmp_path / "repo"), backends=("tensorrt",)),
          log=lambda m: None)
    c = parse(tmp_path / "repo" / "bisenetv2_tensorrt" / "config.pbtxt")
    assert (c.backend, c.max_batch_size) == ("tensorrt", 4)  # the engine's profile caps it
    assert c.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert (tmp_path / "repo/bisenetv2_tensorrt/1/model.plan").read_bytes() == b"engine bytes"


def test_refusals_write_nothing(logits_artifact, tmp_path):
    out = tmp_path / "repo"
    with pytest.raises(InputError, match="no TensorRT engine.*edgeseg build"):
        write(RepoConfig(str(logits_artifact), str(out), backends=("tensorrt",)))
    with pytest.raises(UsageError, match="unknown engine 'tensorflow'"):
        write(RepoConfig(str(logits_artifact), str(out), segmenter_backend="tensorflow"))
    with pytest.raises(UsageError, match="--queue-delay-us -5"):
        write(RepoConfig(str(logits_artifact), str(out), queue_delay_us=-5))
    assert not out.exists()
    write(RepoConfig(str(logits_artifact), str(out), backends=("onnxruntime",)),
          log=lambda m: None)
    before = (out / "bisenetv2_onnxruntime" / "config.pbtxt").read_text()
    with pytest.raises(OutputExists, match="--force"):
        write(RepoConfig(str(logits_artifact), str(out), backends=("openvino",)))
    assert (out / "bisenetv2_onnxruntime" / "config.pbtxt").read_text() == before
    assert not (out / "bisenetv2_openvino").exists()


def test_cli(logits_artifact, tmp_path, capsys):
    assert main(["triton", str(logits_artifact), "--out", str(tmp_path / "r"), "--backend",
                 "python", "--max-batch", "4", "--instances", "2", "--threads", "1"]) == 0
    c = parse(tmp_path / "r" / "bisenetv2" / "config.pbtxt")
    assert c.max_batch_size == 4 and c.instance_group[0].count == 2
    assert list(c.dynamic_batching.preferred_batch_size) == [2, 4]
    assert c.parameters["threads"].string_value == "1"
    assert main(["triton", str(logits_artifact), "--out", str(tmp_path / "r")]) != 0
    assert "already exists" in capsys.readouterr().err
