"""The TensorRT build decisions that need no GPU: routes per TensorRT version, flags,
profiles, engine tags, trtexec command lines, build records and the version/GPU checks."""

from __future__ import annotations

import pytest

from edgeseg.backends.tensorrt.plan import (
    BuildConfig,
    EngineMismatch,
    PlanError,
    build_record,
    check_build,
    engine_tag,
    parse_shapes,
    plan_build,
    select_build,
    trtexec_command,
)


def meta(precision="fp16", target=None, dynamic=False, files=("model.onnx",)):
    shape = ["batch" if dynamic else 1, 3, 512, 1024]
    return {"precision": precision, "files": dict.fromkeys(files, "0" * 64),
            "calibration": {"target": target} if target else None,
            "input": {"name": "input", "shape": shape, "size": [512, 1024]}}


def cfg(**kw):
    return BuildConfig(artifact="a", **kw)


def test_strongly_typed_is_the_default_route_on_10_and_11():
    for version in ("10.3.0", "10.14.1", "11.4.1"):
        for precision, target in (("fp32", None), ("fp16", None), ("int8", "tensorrt")):
            p = plan_build(meta(precision, target), cfg(), version)
            assert p.route == "strong" and p.flags == () and p.profile is None


def test_weak_route_flags_on_10_and_refused_on_11():
    p = plan_build(meta("fp32"), cfg(fp16=True), "10.3.0")
    assert p.route == "weak" and p.flags == ("FP16",) and "deprecated" in p.notes[0]
    with pytest.raises(PlanError, match="strongly typed networks only"):
        plan_build(meta("fp32"), cfg(fp16=True), "11.0.0")
    with pytest.raises(PlanError, match="starts from an FP32 artifact"):
        plan_build(meta("fp16"), cfg(fp16=True), "10.3.0")
    with pytest.raises(PlanError, match="older than 10.0"):
        plan_build(meta(), cfg(), "8.6.1")


def test_implicit_int8_needs_calibration():
    with pytest.raises(PlanError, match="needs calibration"):
        plan_build(meta("fp32"), cfg(int8=True), "10.3.0")
    cache = plan_build(meta("fp32", files=("model.onnx", "calib.cache")), cfg(int8=True),
                       "10.3.0")
    assert cache.calibration == "cache" and cache.flags == ("INT8",)
    assert plan_build(meta("fp32"), cfg(int8=True, calib="set"), "10.3.0").calibration == \
        "calibrator"


def test_int8_graphs_must_be_symmetric_and_strongly_typed():
    with pytest.raises(PlanError, match="asymmetric.*--target tensorrt"):
        plan_build(meta("int8", "onnxruntime"), cfg(), "10.3.0")
    ov = plan_build(meta("int8", "openvino"), cfg(), "10.3.0")
    assert ov.route == "strong" and "symmetric" in ov.notes[0]
    with pytest.raises(PlanError, match="explicit quantization"):
        plan_build(meta("int8", "tensorrt"), cfg(route="weak"), "10.3.0")
    with pytest.raises(PlanError, match="weakly typed route"):
        plan_build(meta("fp32"), cfg(route="strong", fp16=True), "10.3.0")


def test_dla_and_options():
    p = plan_build(meta("fp16"), cfg(dla_core=1, gpu_fallback=True, workspace_mib=512,
                                     opt_level=5, version_compatible=True,
                                     hardware_compat="ampere+"), "10.3.0")
    assert p.flags == ("GPU_FALLBACK", "VERSION_COMPATIBLE") and p.dla_core == 1
    assert p.workspace_bytes == 512 << 20 and p.opt_level == 5
    for bad, words in [(dict(dla_core=0), "DLA runs FP16 or INT8"),
                       (dict(gpu_fallback=True), "applies with --dla-core"),
                       (dict(opt_level=7), "0..5"), (dict(workspace_mib=0), "at least 1 MiB"),
                       (dict(hardware_compat="turing+"), "ampere+")]:
        with pytest.raises(PlanError, match=words):
            plan_build(meta("fp32"), cfg(**bad), "10.3.0")


def test_profiles_for_dynamic_batch():
    p = plan_build(meta(dynamic=True), cfg(), "10.3.0")
    assert p.profile == {"input": [[1, 3, 512, 1024], [1, 3, 512, 1024], [8, 3, 512, 1024]]}
    p = plan_build(meta(dynamic=True), cfg(shapes="1/4/16"), "10.3.0")
    assert [s[0] for s in p.profile["input"]] == [1, 4, 16]
    static = ["batch", 3, 512, 1024]
    assert parse_shapes("2x3x512x1024/2x3x512x1024/4x3x512x1024", static)[2][0] == 4
    for bad, words in [("1/2", "MIN/OPT/MAX"), ("4/2/8", "MIN <= OPT"),
                       ("1x3x256x256/1/1", "fixed at 512"), ("a/b/c", "not a number")]:
        with pytest.raises(PlanError, match=words):
            parse_shapes(bad, static)
    with pytest.raises(PlanError, match="static"):
        plan_build(meta(), cfg(shapes="1/1/2"), "10.3.0")


def test_engine_tags_name_gpu_and_version():
    assert engine_tag("NVIDIA GeForce RTX 4090", "8.9", "10.3.0.26", cfg()) == \
        "geforce-rtx-4090-sm89-trt10.3.0"
    assert engine_tag("Orin (nvgpu)", "8.7", "10.3.0", cfg(dla_core=0, fp16=True)) == \
        "orin-nvgpu-sm87-dla0-trt10.3.0"
    assert engine_tag("NVIDIA H100", "9.0", "10.14.1", cfg(hardware_compat="ampere+",
                                                           version_compatible=True)) == \
        "ampere-plus-trt10.14.1-vc"


def test_trtexec_commands():
    m = meta("fp32", dynamic=True, files=("model.onnx", "calib.cache"))
    c = cfg(fp16=True, int8=True, workspace_mib=1024, opt_level=4, timing_cache="tc.bin",
            dla_core=0, gpu_fallback=True, shapes="1/2/4", device=1)
    cmd = trtexec_command(m, plan_build(m, c, "10.3.0"), c, "model.x.engine")
    assert cmd[:3] == ["trtexec", "--onnx=model.onnx", "--saveEngine=model.x.engine"]
    for flag in ("--fp16", "--int8", "--calib=calib.cache", "--memPoolSize=workspace:1024M",
                 "--builderOptimizationLevel=4", "--timingCacheFile=tc.bin", "--useDLACore=0",
                 "--allowGPUFallback", "--minShapes=input:1x3x512x1024",
                 "--optShapes=input:2x3x512x1024", "--maxShapes=input:4x3x512x1024",
                 "--device=1", "--skipInference"):
        assert flag in cmd, flag
    assert "--stronglyTyped" not in cmd
    strong = cfg(version_compatible=True, hardware_compat="ampere+")
    cmd = trtexec_command(meta(), plan_build(meta(), strong, "10.3.0"), strong, "e")
    assert {"--stronglyTyped", "--versionCompatible", "--hardwareCompatibilityLevel=ampere+"} \
        <= set(cmd)


def _record(**kw):
    c = cfg(**{k: v for k, v in kw.items() if k in ("version_compatible", "hardware_compat")})
    p = plan_build(meta(), c, "10.3.0")
    return build_record(engine_file="model.e.engine", trt_version=kw.get("trt", "10.3.0"),
                        gpu_name="Orin", compute_capability=kw.get("cc", "8.7"), plan=p,
                        cfg=c, onnx_sha256="0" * 64, seconds=12.34)


def test_build_checks_refuse_other_versions_and_gpus():
    rec = _record()
    assert rec["backend"] == "tensorrt" and rec["build_seconds"] == 12.3
    check_build(rec, "10.3.0", "8.7")
    with pytest.raises(EngineMismatch, match="built with TensorRT 10.3.0, this machine has "
                                             "10.4.0"):
        check_build(rec, "10.4.0", "8.7")
    with pytest.raises(EngineMismatch, match="compute capability 8.7.*8.9"):
        check_build(rec, "10.3.0", "8.9")
    vc = _record(version_compatible=True)
    check_build(vc, "10.7.0", "8.7")  # newer runtime, same major: allowed
    with pytest.raises(EngineMismatch):
        check_build(vc, "10.2.0", "8.7")  # older runtime: not
    with pytest.raises(EngineMismatch):
        check_build(vc, "11.0.0", "8.7")
    hc = _record(hardware_compat="ampere+")
    check_build(hc, "10.3.0", "9.0")
    with pytest.raises(EngineMismatch):
        check_build(hc, "10.3.0", "7.5")  # Turing is older than Ampere


def test_select_build_picks_the_engine_that_runs_here():
    a, b = _record(), _record(cc="8.9")
    b["file"] = "model.f.engine"
    m = {"builds": [{"backend": "openvino"}, a, b]}
    assert select_build(m, "10.3.0", "8.9")["file"] == "model.f.engine"
    with pytest.raises(EngineMismatch, match="no TensorRT engine of this artifact runs here"):
        select_build(m, "10.3.0", "7.2")
    with pytest.raises(EngineMismatch, match="edgeseg build"):
        select_build({"builds": []}, "10.3.0", "8.9")


def test_plan_header_is_read_without_tensorrt():
    import struct

    from edgeseg.backends.tensorrt.plan import check_plan_header, plan_version

    header = struct.pack("<II", 0x74727466, 0) + bytes(16) + bytes([10, 3, 0, 26])
    assert plan_version(header) == (10, 3, 0, 26)
    check_plan_header(header, "10.3.0", "e")
    with pytest.raises(EngineMismatch, match="serialized by TensorRT 10.3.0.26, this machine "
                                             "has 10.8.0"):
        check_plan_header(header, "10.8.0", "e")
    check_plan_header(header, "10.8.0", "e", version_compatible=True)
    with pytest.raises(EngineMismatch, match="truncated"):
        check_plan_header(header[:10], "10.3.0", "e")
    with pytest.raises(EngineMismatch, match="no plan tag"):
        check_plan_header(b"\0" * 28, "10.3.0", "e")


def test_tensorrt_11_needs_no_strongly_typed_flag_and_same_cc_needs_10_9():
    p = plan_build(meta(), cfg(), "11.4.1")
    assert "--stronglyTyped" not in trtexec_command(meta(), p, cfg(), "e")
    with pytest.raises(PlanError, match="10.9.0 or newer"):
        plan_build(meta(), cfg(hardware_compat="same-cc"), "10.3.0")
    c = cfg(hardware_compat="same-cc")
    cmd = trtexec_command(meta(), plan_build(meta(), c, "10.9.0"), c, "e")
    assert "--hardwareCompatibilityLevel=sameComputeCapability" in cmd


def test_int8_artifacts_reach_the_implicit_route_through_their_fp32_graph_and_cache():
    """`edgeseg quantize --target tensorrt` ships model.fp32.onnx + calib.cache: --int8 builds
    that graph with that cache (TensorRT 10.x), saying what does not carry over; without
    --int8 the Q/DQ model.onnx is built strongly typed; TensorRT 11 refuses the route."""
    files = ("model.onnx", "model.fp32.onnx", "calib.cache")
    int8 = meta("int8", "tensorrt", files=files)
    p = plan_build(int8, cfg(int8=True), "10.3.0")
    assert (p.route, p.flags, p.calibration, p.onnx_file) == \
        ("weak", ("INT8",), "cache", "model.fp32.onnx")
    assert any("do not carry over" in n for n in p.notes)
    cmd = trtexec_command(int8, p, cfg(int8=True), "x.engine")
    assert cmd[1] == "--onnx=model.fp32.onnx" and "--calib=calib.cache" in cmd
    assert plan_build(int8, cfg(), "10.3.0").onnx_file == "model.onnx"
    with pytest.raises(PlanError, match="strongly typed networks only"):
        plan_build(int8, cfg(int8=True), "11.1.0")
    # an INT8 artifact without the pair: the Q/DQ graph takes no implicit flags
    with pytest.raises(PlanError, match="Q/DQ graph is built strongly typed"):
        plan_build(meta("int8", "tensorrt"), cfg(int8=True), "10.3.0")
