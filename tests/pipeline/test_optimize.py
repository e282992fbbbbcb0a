"""`edgeseg optimize`: candidates built, scored and timed; the pick, its report and cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeseg.cli.main import main
from edgeseg.core.errors import GoalMissed, MissingInput, UsageError
from edgeseg.pipeline.optimize import Candidate, OptimizeConfig, _budget, _select, run
from edgeseg.pipeline.optimize.write import pareto
from edgeseg.runtime.segmenter import Segmenter

SIZE = (32, 64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from edgeseg.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("data") / "synth"
    write_dataset(root, 48, SIZE, seed=0, progress=False)  # 32+ train images to calibrate
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, data):
    from edgeseg.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "icnet.pt"
    train(TrainConfig(model="icnet", data=str(data), out=str(out), size=SIZE, iters=2,
                      batch=2, val_every=10, val_limit=2), progress=False, log=lambda m: None)
    return out


def test_optimize_writes_the_fastest_candidate_within_the_budget(tmp_path, data, checkpoint):
    lines: list[str] = []
    cfg = OptimizeConfig(source=str(checkpoint), out=str(tmp_path / "pick"), val=str(data),
                         max_drop=5.0, precisions=("fp32", "int8"), targets=("onnxruntime",),
                         outputs=("logits",), finalists=20, val_limit=4, rounds=2, warmup=0,
                         threads=1, work=str(tmp_path / "work"), throughput_seconds=0.3,
                         batches=(2,))
    res = run(cfg, log=lines.append)
    rows = [(t["artifact"], t["batch"], t["streams"]) for t in res.throughput]
    best = res.batching["best_batch"]
    assert rows == [("pick", 1, 1), ("pick", 1, 2), ("dynamic-batch twin", 1, 1),
                    ("dynamic-batch twin", 2, 1)] + (
                        [("dynamic-batch twin", 2, 2)] if best == 2 else [])
    assert all(t["fps"] > 0 and t["frames"] > 0 for t in res.throughput)
    twin_rows = [t for t in res.throughput if t["artifact"] != "pick" and t["streams"] == 1]
    assert best == max(twin_rows, key=lambda t: t["fps"])["batch"]
    assert res.batching["agreement"] > 0.99
    assert json.loads((Path(res.batching["artifact"]) / "meta.json").read_text())[
        "input"]["dynamic"] == "batch"
    prof = res.profile
    assert prof["engine"] == res.winner.engine and prof["int8_peak_gops"] > 0
    assert abs(sum(g["share"] for g in prof["groups"].values()) - 1) < 1e-6
    assert prof["groups"]["conv int8"]["nodes"] + prof["groups"]["conv float"]["nodes"] > 0
    measured = [c for c in res.candidates if c.status == "measured"]
    assert res.winner in measured
    assert res.winner.latency["p50"] == min(c.latency["p50"] for c in measured)
    assert all(c.why for c in res.candidates), "every candidate says why it won or lost"
    assert {c.phase for c in res.candidates if c.artifact} == {1, 2}
    assert any(c.fused for c in res.candidates if c.phase == 2)
    meta = json.loads((tmp_path / "pick" / "meta.json").read_text())
    assert meta["runtime"]["engine"] == res.winner.engine
    assert meta["runtime"]["inference_precision"] == res.winner.hint
    assert meta["runtime"]["miou"] == res.winner.miou
    rep = json.loads((tmp_path / "pick" / "optimize" / "report.json").read_text())
    assert rep["winner"] == res.winner.name and rep["isa"]
    assert len(rep["candidates"]) == len(res.candidates)
    assert (tmp_path / "pick" / "optimize" / "pareto.png").stat().st_size > 1000
    assert "**Picked: " in (tmp_path / "pick" / "optimize" / "report.md").read_text()
    with Segmenter(tmp_path / "pick") as seg:
        assert seg.backend == res.winner.engine
        assert seg.inference_precision == res.winner.hint
    # a rerun rebuilds and re-scores nothing, re-times everything; --dynamic-batch writes
    # the twin
    again: list[str] = []
    res2 = run(OptimizeConfig(**{**cfg.__dict__, "force": True, "dynamic_batch": True,
                                 "throughput_seconds": 0}), log=again.append)
    made = [x for x in again if x.startswith(("export:", "quantize:", "score:"))]
    # Only the winner's dynamic-batch twin may be new: timing noise can pick another winner
    # (2 rounds on a shared machine), whose twin was not made by the first run.
    assert all(x.endswith(", dynamic batch") for x in made), made
    if res2.winner.name == res.winner.name:
        assert not made
    assert any(x.startswith("export:") for x in lines) and any(
        x.startswith("score:") for x in lines)
    assert {c.name: c.miou for c in res2.candidates} == {c.name: c.miou for c in res.candidates}
    if res2.winner.name == res.winner.name:
        assert res2.batching["artifact"] == res.batching["artifact"]
    meta = json.loads((tmp_path / "pick" / "meta.json").read_text())
    assert meta["input"]["dynamic"] == "batch" and meta["runtime"]["dynamic_batch_twin"]
    with Segmenter(tmp_path / "pick") as seg:
        image = np.zeros((*SIZE, 3), np.uint8)
        assert [y.shape for y in seg.predict_batch([image] * 3)] == [SIZE] * 3


def test_an_existing_output_is_kept_without_force(tmp_path, data, checkpoint):
    (tmp_path / "pick").mkdir()
    (tmp_path / "pick" / "keep.txt").write_text("mine")
    code = main(["optimize", str(checkpoint), "--val", str(data), "--out",
                 str(tmp_path / "pick"), "--precisions", "fp32", "--outputs", "logits",
                 "--no-fused", "--backends", "onnxruntime", "--rounds", "1", "--warmup", "0",
                 "--val-limit", "2", "--work", str(tmp_path / "work"), "--no-progress",
                 "--throughput-seconds", "0", "--no-profile"])
    assert code == 2 and (tmp_path / "pick" / "keep.txt").read_text() == "mine"


def test_bad_sources_are_named_errors(tmp_path, data):
    with pytest.raises(MissingInput, match="not a checkpoint file, an artifact directory or "
                       "a registry model"):
        run(OptimizeConfig(source="nonet", out=str(tmp_path / "o"), val=str(data)))
    with pytest.raises(MissingInput, match="--val .*dataset directory not found"):
        run(OptimizeConfig(source="icnet", out=str(tmp_path / "o"), val=str(tmp_path / "no"),
                           work=str(tmp_path / "w")))
    with pytest.raises(UsageError, match="unknown or no precision"):
        OptimizeConfig(source="icnet", out="o", val="v", precisions=("int4",))


def _cand(name: str, p50: float, miou: float, status: str = "pending") -> Candidate:
    c = Candidate("fp32", "logits", False, name, status=status)
    c.latency, c.miou = {"p50": p50}, miou
    return c


def test_budget_selection_and_pareto_front():
    ref = _cand("ref", 10.0, 0.70)
    fast_bad = _cand("a", 2.0, 0.60)
    fast_ok = _cand("b", 3.0, 0.698)
    slow_ok = _cand("c", 8.0, 0.70)
    dominated = _cand("d", 9.0, 0.65)
    cands = [fast_bad, fast_ok, slow_ok, dominated]
    _budget(cands, ref, max_drop=0.5)
    assert fast_bad.status == dominated.status == "over budget"
    assert "10.00 points below the FP32 reference (0.7000); the budget is 0.5" in fast_bad.why
    assert fast_ok.status == slow_ok.status == "measured"
    assert _select(cands, 0.5) is fast_ok
    assert slow_ok.why.startswith("slower: p50 8.00 ms vs 3.00 ms (+167%)")
    assert {c.engine for c in pareto(cands)} == {"a", "b", "c"}
    assert _select([fast_bad], 0.5) is None


def test_inference_precision_is_an_openvino_setting(tmp_path, checkpoint):
    from edgeseg.runtime.segmenter import runtime_precision

    with pytest.raises(UsageError, match="the backend onnxruntime has no such setting .ask "
                       "for backend=openvino"):
        runtime_precision({}, "onnxruntime", "bf16")
    meta = {"runtime": {"engine": "openvino", "inference_precision": "bf16"}}
    assert runtime_precision(meta, "openvino", None) == "bf16"
    assert runtime_precision(meta, "onnxruntime", None) is None


def test_an_artifact_without_its_checkpoint_is_measured_as_it_is(tmp_path, data, checkpoint):
    """Its own graph I/O (here labels) in phase 1; other I/O needs the checkpoint: skipped."""
    import shutil

    copy = tmp_path / "gone.pt"
    shutil.copy(checkpoint, copy)
    art = tmp_path / "labels-fp32"
    assert main(["export", "--checkpoint", str(copy), "--size", "32x64", "--output", "labels",
                 "--out", str(art)]) == 0
    copy.unlink()
    res = run(OptimizeConfig(source=str(art), out=str(tmp_path / "pick"), val=str(data),
                             precisions=("fp32",), engines=("onnxruntime",), finalists=1,
                             outputs=("logits", "labels"), fused=(False,), val_limit=2,
                             rounds=1, warmup=0, work=str(tmp_path / "work"),
                             throughput_seconds=0, profile=False))
    assert res.winner.output == "labels" and res.winner.artifact == art
    skipped = [c for c in res.candidates if c.phase == 2]
    assert skipped and all(c.status == "skipped" and "re-export" in c.why for c in skipped)
    # a batch above 1 needs --dynamic batch too: refused, and the pick written before stays
    before = (tmp_path / "pick" / "meta.json").read_bytes()
    with pytest.raises(GoalMissed, match="no dynamic-batch twin .a batch above 1 needs the "
                       "graph exported with --dynamic batch"):
        run(OptimizeConfig(source=str(art), out=str(tmp_path / "pick"), val=str(data),
                           precisions=("fp32",), engines=("onnxruntime",), finalists=1,
                           outputs=("labels",), fused=(False,), val_limit=2, rounds=1,
                           warmup=0, work=str(tmp_path / "work"), throughput_seconds=0,
                           profile=False, dynamic_batch=True, force=True))
    assert (tmp_path / "pick" / "meta.json").read_bytes() == before


def test_profile_groups_and_explains_float_convolutions():
    from edgeseg.bench.profile import explain_float_convs, group_of, summarize

    assert group_of("QLinearConv", "CPUExecutionProvider") == "conv int8"
    assert group_of("Convolution", "brgconv_avx512_amx_I8") == "conv int8"
    assert group_of("Convolution", "jit_avx512_bf16") == "conv float"
    assert group_of("FakeQuantize", "ref") == "q/dq" and group_of("TopK", "") == "argmax"
    rows = [{"node": "/head/Conv", "op": "Conv", "exec": "cpu", "ms": 3.0},
            {"node": "/a/Conv_quant", "op": "QLinearConv", "exec": "cpu", "ms": 1.0}]
    s = summarize(rows)
    assert s["groups"]["conv float"]["share"] == 0.75 and s["total_ms"] == 4.0
    signed = {"calibration": {"activations": "int8 symmetric per-tensor", "target": "openvino"}}
    why = explain_float_convs(s, signed, "onnxruntime")[0]["why"]
    assert "only with U8 activations" in why and "target openvino" in why
    kept = {"calibration": {"activations": "int8", "float_layers": ["/head/Conv"]}}
    assert "budget fallback" in explain_float_convs(s, kept, "onnxruntime")[0]["why"]
    rule = {"calibration": {"rules": [{"rule": "image-convs", "nodes": ["/head"], "why": "w"}]}}
    assert "image-convs rule" in explain_float_convs(s, rule, "openvino")[0]["why"]
    near = {"calibration": {"float_layers": ["/head/Con"]}}  # a prefix of the name, not a node
    assert "did not make" in explain_float_convs(s, near, "openvino")[0]["why"]
    assert "did not make" in explain_float_convs(s, {"calibration": {}}, "openvino")[0]["why"]


def test_the_report_lists_q_dq_nodes_the_engine_did_not_fold():
    from edgeseg.bench.profile import summarize
    from edgeseg.pipeline.optimize.write import profile_lines

    rows = [{"node": "/a/Conv", "op": "Convolution", "exec": "brgconv_avx512_amx_I8", "ms": 3.0},
            {"node": "in/fq", "op": "FakeQuantize", "exec": "jit_avx512", "ms": 1.0}]
    prof = {"engine": "openvino", "hint": "bf16", "precision": "int8", **summarize(rows),
            "achieved_gops": None, "int8_peak_gops": 100.0}
    text = "\n".join(profile_lines(prof))
    assert "ran on their own, not folded" in text and "`in/fq` (FakeQuantize" in text
    prof = {**prof, **summarize(rows[:1])}
    text = "\n".join(profile_lines(prof))
    assert "folded every one into an INT8 convolution" in text and "in/fq" not in text
