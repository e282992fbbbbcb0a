"""`edgeseg bench` and `edgeseg report` end to end on tiny artifacts."""

from __future__ import annotations

import json

import pytest

from edgeseg.bench import report, results
from edgeseg.bench.run import BenchConfig, bench
from edgeseg.cli.main import main


def quiet(msg):
    pass


def test_bench_onnxruntime_with_val_gives_a_valid_result(imported, synth):
    r = bench(BenchConfig(artifact=str(imported), backend="ort", iters=4, warmup=1, threads=1,
                          val=str(synth), val_limit=1), log=quiet, progress=False)
    assert results.validate(r) == []
    assert r["backend"]["name"] == "onnxruntime" and r["config"]["iters"] == 4
    assert list(r["phases_ms"]) == ["preprocess", "compute", "postprocess"]
    assert all(s["iters"] == 4 for s in r["phases_ms"].values())
    # end to end is one span around the three phases: never shorter than compute alone
    assert r["end_to_end_ms"]["min_ms"] >= r["phases_ms"]["compute"]["min_ms"]
    assert r["accuracy"]["images"] == 1 and 0 <= r["accuracy"]["miou"] <= 1
    assert r["power"] is None  # no sensor on this machine: nothing invented
    assert r["memory"]["peak_host_mib"] > 0


@pytest.mark.openvino
def test_bench_openvino_and_seconds_mode(imported):
    r = bench(BenchConfig(artifact=str(imported), backend="openvino", seconds=0.3, warmup=0,
                          threads=1), log=quiet, progress=False)
    assert results.validate(r) == [] and r["backend"]["file"] == "model.onnx"
    assert r["config"]["iters"] >= 1


def test_bench_torch_reference_is_fp32(exported):
    r = bench(BenchConfig(artifact=str(exported), backend="torch", iters=2, warmup=1,
                          threads=1), log=quiet, progress=False)
    assert results.validate(r) == []
    assert r["artifact"]["precision"] == "fp32" and r["backend"]["file"] is None


@pytest.mark.parametrize("kw, message", [
    ({"iters": 0}, "--iters must be at least 1, got 0"),
    ({"iters": -3}, "--iters must be at least 1"),
    ({"seconds": 0}, "--seconds must be positive"),
    ({"warmup": -1}, "--warmup must be 0 or more"),
    ({"backend": "coreml"}, "unknown engine 'coreml'"),
    ({"iters": 3, "seconds": 1.0}, "not both"),
    ({"compile": True}, "--compile applies to --backend torch"),
])
def test_bad_bench_config(kw, message):
    with pytest.raises(ValueError, match=message):
        BenchConfig(artifact="x", **kw)


def test_cli_errors_are_clear(imported, tmp_path, capsys, monkeypatch):
    assert main(["bench", str(imported), "--iters", "0", "--no-progress"]) == 2
    assert "--iters must be at least 1, got 0" in capsys.readouterr().err
    assert main(["bench", str(imported), "--batch", "2", "--iters", "1", "--no-progress"]) == 2
    assert "fixed batch of 1" in capsys.readouterr().err
    assert main(["bench", str(imported), "--backend", "torch", "--no-progress"]) == 2
    assert "imported ONNX has no PyTorch model" in capsys.readouterr().err
    import edgeseg.backends as backends

    monkeypatch.setattr(backends, "is_available", lambda name: name != "openvino")
    out = tmp_path / "r.json"
    assert main(["bench", str(imported), "--backend", "ov", "--iters", "1", "--no-progress",
                 "--json", str(out)]) == 3  # the engine is missing
    assert "pip install openvino" in capsys.readouterr().err
    assert not out.exists()


def test_cli_bench_then_report(imported, tmp_path, capsys):
    res = tmp_path / "results"
    for backend in ("onnxruntime", "openvino"):
        assert main(["bench", str(imported), "--backend", backend, "--iters", "3",
                     "--warmup", "1", "--threads", "1", "--no-progress",
                     "--results", str(res)]) == 0
    files = sorted(res.rglob("*.json"))
    assert len(files) == 2 and files[0].parent.parent == res
    capsys.readouterr()
    assert main(["report", str(res), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.count("| fp32 |") == 2
    assert (tmp_path / "rep" / "phases.png").stat().st_size > 1000
    # a truncated file is listed, and the exit status says something was left out
    (res / "broken.json").write_text(files[0].read_text()[:100])
    assert main(["report", str(res), "--out", str(tmp_path / "rep2")]) == 1
    assert "broken.json: truncated" in (tmp_path / "rep2" / "report.md").read_text()
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "rep3")]) == 2
    assert "no usable result files" in capsys.readouterr().err


def _row(device, backend, precision, p50, miou, target=None):
    from tests.bench.test_results import make_result

    r = make_result()
    r["system"] = {"cpu": {"model": device}}
    r["backend"]["name"] = backend
    r["artifact"].update(precision=precision, target=target)
    for key in ("latency_ms",):
        r[key] = {**r[key], "min_ms": p50, "median_ms": p50, "p90_ms": p50, "p99_ms": 2 * p50,
                  "max_ms": 2 * p50}
    r["accuracy"] = None if miou is None else {"miou": miou}
    return r


def test_report_speedup_and_miou_delta_by_hand(tmp_path):
    rs = [_row("cpu-a", "torch", "fp32", 400.0, 0.70),
          _row("cpu-a", "openvino", "fp32", 200.0, 0.71),
          _row("cpu-a", "openvino", "int8", 80.0, 0.705, "openvino"),
          _row("cpu-b", "onnxruntime", "int8", 50.0, 0.69, "onnxruntime")]
    table = {(t["device"], t["backend"], t["raw_precision"]): t for t in report.rows(rs)}
    int8 = table[("cpu-a", "openvino", "int8")]
    assert int8["speedup"] == pytest.approx(5.0)  # 400 / 80
    assert int8["dmiou"] == pytest.approx(-0.5)  # against the same backend's FP32 row
    assert table[("cpu-a", "torch", "fp32")]["speedup"] == pytest.approx(1.0)
    other = table[("cpu-b", "onnxruntime", "int8")]
    assert other["speedup"] is None and other["dmiou"] is None  # no reference on cpu-b
    for i, r in enumerate(rs):
        results.write(r, tmp_path / "res" / f"{i}.json")
    rep = report.report([tmp_path / "res"], tmp_path / "out")
    assert {p.name for p in rep["written"]} == {"report.md", "report.csv",
                                               "latency_vs_miou.png", "phases.png"}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| 5.00x | 0.7050 | -0.50 pt |" in md
    csv_lines = (tmp_path / "out" / "report.csv").read_text().splitlines()
    assert len(csv_lines) == 5


def test_pareto_front_by_hand():
    pts = [(10, 0.60), (20, 0.70), (15, 0.55), (30, 0.69), (40, 0.75), (12, 0.60)]
    assert report.pareto(pts) == [(10, 0.60), (20, 0.70), (40, 0.75)]
    assert json.dumps(report.pareto([])) == "[]"


@pytest.mark.slow  # ~50 s: inductor compiles C++ kernels on this CPU
def test_bench_torch_compile(exported):
    """torch.compile (inductor, CPU) compiles in the warm-up and is recorded as its own
    backend."""
    r = bench(BenchConfig(artifact=str(exported), backend="torch", compile=True, iters=2,
                          warmup=1, threads=1), log=quiet, progress=False)
    assert results.validate(r) == [] and r["backend"]["name"] == "torch-compile"
    assert r["backend"]["options"]["compile"] is True


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed: this checks the message users without it get")
def test_bench_tensorrt_without_tensorrt_says_how_to_get_it(imported, capsys):
    from edgeseg.cli.main import main

    assert main(["bench", str(imported), "--backend", "tensorrt", "--iters", "1"]) != 0
    assert "JetPack" in capsys.readouterr().err
