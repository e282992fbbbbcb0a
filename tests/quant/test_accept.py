"""Acceptance of an INT8 graph on accuracy against FP32 in the target's engine: the mIoU drop
on val images nothing was tuned on, the budget that tunes on one part and reports on another,
the label-free check on held-out calibration images (decided pixels), refusals that name
figure, limit and layers, and cross-engine agreement as a diagnostic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeseg.cli.main import main
from edgeseg.core.artifact import read_meta
from edgeseg.quant import qdq
from edgeseg.quant.config import QuantConfig, QuantizationError
from edgeseg.quant.int8 import quantize
from tests.quant.helpers import run

pytest.importorskip("openvino")
pytestmark = pytest.mark.openvino


def test_accuracy_is_scored_against_fp32(fp32_artifact, calib_set, synth, tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "acc", val=str(synth))
    acc = meta["accuracy"]
    # No budget: nothing was tuned on the val split, so all of it is held out.
    assert acc["images"] == 12 and acc["held_out"] and acc["tuned_on"] is None
    assert 0 <= acc["reference_miou"] <= 1
    assert (acc["engine"], acc["mode"]) == ("onnxruntime", "reference")
    assert set(acc["miou"]) == {"onnxruntime", "openvino"}
    for backend, m in acc["miou"].items():
        assert acc["drop_points"][backend] == pytest.approx(100 * (acc["reference_miou"] - m))
    assert 0.5 < acc["agreement"]["fp32|int8-onnxruntime"] <= 1
    a = meta["acceptance"]
    assert a["criterion"] == "miou_drop" and a["limit"] == 1.0 and a["images"] == 12
    assert a["figure"] == acc["drop_points"]["onnxruntime"] and a["passed"]


def test_budget_tunes_on_one_half_and_reports_on_the_other(fp32_artifact, calib_set, synth,
                                                          tmp_path):
    # A budget of 0 points is met only when the quantized graph scores like FP32 (or better);
    # --keep-best writes the best graph either way and says whether the budget held.
    meta = run(fp32_artifact, calib_set, tmp_path / "b", val=str(synth), max_drop=0.0,
               sensitivity_images=6, max_float_layers=2, keep_best=True)
    acc = meta["accuracy"]
    b = acc["budget"]
    assert b["max_drop"] == 0.0 and b["backend"] == "onnxruntime"
    # 12 val images: the even-numbered 6 tune, the odd-numbered 6 report
    assert b["tune_images"] == 6 and acc["images"] == 6 and acc["tuned_on"]["images"] == 6
    assert acc["split"] == "val, odd-numbered images"
    drop0 = b["steps"][0]["drop_points"]
    if drop0 <= 0:
        assert b["float_layers"] == [] and b["sensitivity"] == []
    else:
        assert {s["layer"] for s in b["sensitivity"]} == {"conv1", "conv2"}
        assert [s["float_layers"] for s in b["steps"][1:]] == \
            [[b["sensitivity"][0]["layer"]], [s["layer"] for s in b["sensitivity"]]][
                :len(b["steps"]) - 1]
    assert meta["calibration"]["float_layers"] == b["float_layers"]
    q = onnx.load(str(tmp_path / "b" / "model.onnx"))
    assert set(qdq.quantized_compute_nodes(q)) == {"conv1", "conv2"} - set(b["float_layers"])
    a = meta["acceptance"]
    assert a["budget_met"] == a["passed"] == (a["figure"] <= 0.0 + 1e-9)
    assert a["figure"] == acc["drop_points"]["onnxruntime"]


def test_budget_reports_on_a_second_dataset(fp32_artifact, calib_set, synth, own_labels,
                                            tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "t", val=str(synth), test=str(own_labels),
               max_drop=100.0)
    acc = meta["accuracy"]
    assert acc["budget"]["tune_images"] == 12 and acc["tuned_on"]["split"] == "val"
    assert acc["dataset"] == str(own_labels.resolve()) and acc["images"] == 12
    assert meta["acceptance"]["budget_met"] and meta["acceptance"]["limit"] == 100.0


@pytest.fixture(scope="module")
def own_labels(unpool_artifact, synth, tmp_path_factory):
    """The synthetic scenes labelled with the FP32 graph's own predictions: FP32 scores
    mIoU 1.0 there, so every pixel INT8 moves is a measured drop (a random graph's mIoU on
    the real labels is chance, and quantization can move it either way)."""
    import shutil

    from edgeseg.data.datasets import open_dataset
    from edgeseg.data.io import write_label_png
    from edgeseg.quant.engines import _runner_predictor

    root = tmp_path_factory.mktemp("own") / "synth"
    shutil.copytree(synth, root)
    ds = open_dataset(root, "val")
    runner, predict = _runner_predictor("onnxruntime", unpool_artifact / "model.onnx",
                                        read_meta(unpool_artifact), None)
    with runner:
        for i, sample in enumerate(ds.samples):
            write_label_png(sample.mask, predict(ds[i][0]).astype(np.uint8))
    return root


def test_a_missed_budget_is_a_refusal_unless_keep_best(unpool_artifact, calib_set, own_labels,
                                                      tmp_path, capsys):
    """The unpooling graph quantized with ORT's own placement (--no-rules) rounds the values
    its comparison reads, a loss no float convolution can undo: a zero budget is missed."""
    out = tmp_path / "never"
    args = ["quantize", str(unpool_artifact), "--calib", str(calib_set.root), "--val",
            str(own_labels), "--max-drop", "0", "--max-float-layers", "1", "--sensitivity-images",
            "4", "--no-rules", "--no-progress", "--out"]
    assert main([*args, str(out)]) == 1  # a check failed: nothing written
    err = capsys.readouterr().err
    assert "mIoU points against FP32" in err and "limit 0.0 points (--max-drop)" in err
    assert "blames" in err and "--keep-best" in err
    assert not out.exists()
    kept = tmp_path / "kept"
    assert main([*args, str(kept), "--keep-best"]) == 5  # written, goal missed
    assert "budget of 0.0 points was missed" in capsys.readouterr().err
    a = read_meta(kept)["acceptance"]
    assert a["budget_met"] is False and a["passed"] is False and a["figure"] > 0


def test_label_free_refusal_names_figure_limit_and_layers(fp32_artifact, calib_set, tmp_path):
    # Every pixel counted (a margin of 0): the random graph's near-ties flip, so 100% fails.
    with pytest.raises(QuantizationError) as e:
        run(fp32_artifact, calib_set, tmp_path / "r", min_fp32_agreement=1.0,
            decided_margin=0.0)
    msg = str(e.value)
    assert "keeps the FP32 class on only" in msg and "of pixels" in msg
    assert "limit 100.0%" in msg
    assert "blames: conv" in msg and "nothing was written" in msg
    assert not (tmp_path / "r").exists()


def test_label_free_check_counts_the_pixels_fp32_decides(fp32_artifact, calib_set, tmp_path):
    from edgeseg.core.compare import agreement
    from edgeseg.quant.accept import decided

    # Two classes: pixel 0 decided (0.9 vs 0.1), pixel 1 a near-tie (0.52 vs 0.48).
    probs = np.array([[[[0.9, 0.52]], [[0.1, 0.48]]]])  # N=1, C=2, H=1, W=2
    logits = np.log(probs)
    for kind, out in (("probs", probs), ("logits", logits)):
        (mask,) = decided([out], kind, 0.1)
        assert mask.tolist() == [[[True, False]]]
    assert decided([probs], "labels", 0.1) is None and decided([probs], "probs", 0) is None
    a, b = [np.array([[[0, 0]]])], [np.array([[[0, 1]]])]  # the near-tie flipped
    assert agreement(a, b) == 0.5 and agreement(a, b, decided([probs], "probs", 0.1)) == 1.0
    meta = run(fp32_artifact, calib_set, tmp_path / "d")
    acc = meta["acceptance"]
    assert acc["decided_margin"] == 0.1 and 0 < acc["decided_pixels"] < 1
    assert acc["figure"] == acc["fp32_agreement"] >= acc["fp32_agreement_all_pixels"]


def test_engine_agreement_warns_and_refuses_only_when_asked(fp32_artifact, calib_set, tmp_path):
    logs = []
    quantize(QuantConfig(artifact=str(fp32_artifact), calib=str(calib_set.root),
                         out=str(tmp_path / "w"), min_agreement=1.01, min_kernel_agreement=1.01),
             log=logs.append, progress=False)
    assert any(m.startswith("warning: ONNX Runtime and OpenVINO") for m in logs)
    assert (tmp_path / "w" / "meta.json").is_file()
    with pytest.raises(QuantizationError, match="--require-engine-agreement"):
        run(fp32_artifact, calib_set, tmp_path / "g", min_agreement=1.01,
            require_engine_agreement=True)
    assert not (tmp_path / "g").exists()
