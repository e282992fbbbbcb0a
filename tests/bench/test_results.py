from __future__ import annotations

import copy
import json

import pytest

from edgeseg.bench import results
from edgeseg.bench.latency import summarize


def make_result(**over):
    stats = summarize([10.0, 11.0, 12.0, 30.0]).as_dict()
    r = {"schema": results.SCHEMA, "schema_version": results.SCHEMA_VERSION,
         "created": "2026-11-26T00:00:00Z",
         "artifact": {"model": "bisenetv1", "precision": "int8", "target": "openvino",
                      "input_shape": [1, 3, 512, 1024]},
         "backend": {"name": "openvino"}, "config": {"batch": 1, "iters": 4},
         "latency_ms": stats, "phases_ms": {"compute": stats}, "end_to_end_ms": stats,
         "fps": 1000 / stats["median_ms"], "memory": {"peak_host_mib": 100.0},
         "power": None, "accuracy": None, "system": {"cpu": {"model": "X"}}}
    r.update(over)
    return r


def test_a_valid_result_has_no_errors():
    assert results.validate(make_result()) == []


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(schema_version=0), "older than this edgeseg reads"),
    (lambda r: r.update(schema_version=99), "newer than this edgeseg reads"),
    (lambda r: r.update(schema="something"), "not an edgeseg benchmark result"),
    (lambda r: r.pop("latency_ms"), "latency_ms: missing"),
    (lambda r: r["phases_ms"].update(warp={}), "unknown phases"),
    (lambda r: r["phases_ms"].pop("compute"), "compute phase is missing"),
    (lambda r: r["latency_ms"].update(p99_ms=1.0), "out of order"),
    (lambda r: r["latency_ms"].update(iters=0), "iters: must be >= 1"),
    (lambda r: r["config"].update(batch=0), "config.batch"),
    (lambda r: r.update(accuracy={"miou": 1.5}), "accuracy.miou"),
    (lambda r: r.update(power={"source": "nvml"}), "power.mean_w"),
])
def test_malformed_results_are_named(change, message):
    r = make_result()
    change(r)
    errs = results.validate(r)
    assert any(message in e for e in errs), errs


def test_load_names_truncated_and_older_files(tmp_path):
    good = tmp_path / "good.json"
    results.write(make_result(), good)
    assert results.load(good)["artifact"]["model"] == "bisenetv1"
    trunc = tmp_path / "trunc.json"
    trunc.write_text(good.read_text()[:200])
    with pytest.raises(results.ResultError, match="trunc.json: truncated"):
        results.load(trunc)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(make_result(schema_version=0)))
    with pytest.raises(results.ResultError, match="old.json: schema version 0 is older"):
        results.load(old)


def test_write_refuses_invalid_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    results.write(make_result(), path)
    before = path.read_text()
    bad = make_result()
    bad["latency_ms"]["min_ms"] = 99.0
    with pytest.raises(results.ResultError, match="refusing to write"):
        results.write(bad, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_collect_lists_every_unusable_file(tmp_path):
    results.write(make_result(), tmp_path / "dev" / "a.json")
    (tmp_path / "dev" / "b.json").write_text("{")
    (tmp_path / "empty").mkdir()
    got, problems = results.collect([tmp_path / "dev", tmp_path / "empty", tmp_path / "nope"])
    assert len(got) == 1 and got[0]["_file"].endswith("a.json")
    assert len(problems) == 3
    assert any("b.json: truncated" in p for p in problems)
    assert any("no result files" in p for p in problems)
    assert any("no such file" in p for p in problems)


def test_default_name_is_stable():
    r = make_result()
    assert results.default_name(r) == "bisenetv1-int8-openvino-openvino-512x1024-b1.json"
    nhwc = copy.deepcopy(r)
    nhwc["artifact"]["input_shape"] = [1, 512, 1024, 3]
    assert results.default_name(nhwc) == results.default_name(r)
