from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from edgeseg.cli.main import main

FAMILIES = {"bisenetv1", "bisenetv2", "icnet", "segnet", "deeplabv3plus"}


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["size"] == [512, 1024]
    assert "FlopCounterMode" in data["counter"]
    assert {m["name"] for m in data["models"]} >= FAMILIES
    for m in data["models"]:
        assert m["params_m"] > 0 and m["gflops"] == pytest.approx(2 * m["gmacs"], abs=2e-3)


def test_models_table_and_size(capsys):
    assert main(["models", "--size", "256x512", "segnet"]) == 0
    out = capsys.readouterr().out
    assert "GMACs@256x512" in out and "segnet" in out and "bisenetv2" not in out
    # A quarter of the pixels: a quarter of SegNet's 325.5 GMACs at 512x1024.
    row = next(line for line in out.splitlines() if line.startswith("segnet"))
    assert float(row.split()[3]) == pytest.approx(325.5 / 4, rel=0.01)


@pytest.mark.parametrize("size", ["512", "512x", "axb", "0x512", "-1x4"])
def test_bad_size_is_explained(size, capsys):
    with pytest.raises(SystemExit) as e:
        main(["models", f"--size={size}"])
    assert e.value.code == 2
    assert "size must be" in capsys.readouterr().err


def test_unknown_model_is_explained(capsys):
    assert main(["models", "nosuchnet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model(s) nosuchnet" in err and "bisenetv1" in err


def test_no_subcommand_prints_help(capsys):
    assert main([]) == 2
    assert "models" in capsys.readouterr().err


def test_demo_runs_every_model_for_real(capsys):
    assert main(["demo", "--skip-train", "--size", "64x64", "--iters", "1"]) == 0
    out = capsys.readouterr().out
    for name in FAMILIES:
        row = next(line for line in out.splitlines() if line.startswith(name))
        assert "1x19x64x64" in row
        assert float(row.split()[-1]) > 0  # a measured FPS


def test_console_script_is_installed():
    exe = shutil.which("edgeseg") or str(__import__("pathlib").Path(sys.executable).parent
                                           / "edgeseg")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stdout.startswith("edgeseg ")


def test_import_is_light():
    code = "import sys, edgeseg; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.stdout.strip() == "False"


def test_demo_runs_the_pipeline(tmp_path, capsys):
    """Every stage for real on a tiny budget: data, training, FP32/FP16 (and INT8 unless the
    agreement gate refuses a 3-second model, which the demo then says), benchmarks with mIoU,
    the report, the overlay, and where everything is."""
    assert main(["demo", "--workdir", str(tmp_path), "--minutes", "0.05", "--train-size",
                 "64x128", "--scenes", "60", "--iters", "2", "--val-limit", "3",
                 "--threads", "1"]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "pole" in out and "mIoU" in out and "val images" in out
    int8 = "refused, going on without it" not in err
    assert int8 == (tmp_path / "artifacts" / "bisenetv1-int8-onnxruntime" / "meta.json").is_file()
    rows = [line for line in out.splitlines() if line.startswith("| ") and "bisenetv1" in line]
    # torch FP32, then FP32, FP16 (and INT8) in each of the two CPU engines
    assert len(rows) == (7 if int8 else 5), rows
    assert sum("| torch |" in r for r in rows) == 1
    assert all(r.split("|")[12].strip().endswith("x") for r in rows)  # each has a speed-up
    for name in ("report/report.md", "report/report.csv", "report/phases.png",
                 "report/latency_vs_miou.png", "overlay.png", "prediction.png"):
        assert (tmp_path / name).is_file(), name
    assert "Where everything is:" in out and str(tmp_path / "overlay.png") in out
    assert (tmp_path / "bisenetv1-demo.pt").is_file()


def test_models_latency_column(capsys):
    """--latency times each variant's eager forward and adds the column (JSON too)."""
    assert main(["models", "--size", "64x64", "--latency", "--threads", "1", "fastscnn"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("fastscnn"))
    assert "eager ms (1 thr)" in out and float(row.split()[-1]) > 0
