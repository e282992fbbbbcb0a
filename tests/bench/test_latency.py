from __future__ import annotations

import numpy as np
import pytest

from edgeseg.bench.latency import measure, percentile, summarize


def test_percentile_matches_numpy():
    data = sorted(np.random.default_rng(0).exponential(5.0, 37).tolist())
    for q in (0, 10, 50, 90, 99, 100):
        assert percentile(data, q) == pytest.approx(np.percentile(data, q))


def test_summarize():
    s = summarize([4.0, 1.0, 3.0, 2.0])
    assert (s.min_ms, s.max_ms, s.median_ms, s.mean_ms) == (1.0, 4.0, 2.5, 2.5)
    assert s.fps == pytest.approx(400.0)
    assert s.as_dict()["iters"] == 4


def test_measure_counts_calls():
    calls = []
    stats = measure(lambda: calls.append(1), warmup=3, iters=5)
    assert len(calls) == 8 and stats.iters == 5 and stats.min_ms >= 0


@pytest.mark.parametrize("warmup, iters", [(-1, 5), (0, 0)])
def test_measure_rejects_bad_counts(warmup, iters):
    with pytest.raises(ValueError, match="warmup >= 0 and iters >= 1"):
        measure(lambda: None, warmup=warmup, iters=iters)


def test_summarize_empty():
    with pytest.raises(ValueError, match="no timed runs"):
        summarize([])


def test_interleaved_runs_every_callable_once_per_round():
    from edgeseg.bench.latency import interleaved

    order = []
    stats = interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                        warmup=1, rounds=3)
    assert order == ["a", "b"] + ["a", "b"] * 3  # warm-up each, then alternating rounds
    assert stats["a"].iters == stats["b"].iters == 3
    with pytest.raises(ValueError):
        interleaved({"a": lambda: None}, rounds=0)
