"""Latency of a synchronous callable: warm-up, timed runs, order statistics."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from edgeseg.backends import get_runner
from edgeseg.core.errors import UsageError


@dataclass(frozen=True)
class LatencyStats:
    iters: int
    min_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.median_ms

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "fps": round(self.fps, 3)}


def percentile(sorted_ms: list[float], q: float) -> float:
    """Linear-interpolated percentile of an ascending list (numpy's default method)."""
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    pos = (len(sorted_ms) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def summarize(times_ms: list[float]) -> LatencyStats:
    if not times_ms:
        raise UsageError("no timed runs to summarize")
    s = sorted(times_ms)
    return LatencyStats(
        iters=len(s), min_ms=s[0], mean_ms=statistics.fmean(s),
        median_ms=percentile(s, 50), p90_ms=percentile(s, 90), p99_ms=percentile(s, 99),
        max_ms=s[-1], std_ms=statistics.pstdev(s),
    )


def measure(fn: Callable[[], object], *, warmup: int = 2, iters: int = 10) -> LatencyStats:
    """Time `fn()` `iters` times after `warmup` untimed calls. `fn` must be synchronous:
    a GPU runner synchronises inside it (host timers around async work measure nothing)."""
    if warmup < 0 or iters < 1:
        raise UsageError(f"need warmup >= 0 and iters >= 1, got {warmup} and {iters}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return summarize(times)


def interleaved(fns: dict[str, Callable[[], object]], *, warmup: int = 3,
                rounds: int = 20, rotate: bool = False) -> dict[str, LatencyStats]:
    """Time several synchronous callables side by side: `warmup` untimed calls of each, then
    `rounds` rounds of one timed call of each, so that a shared machine's load drifts over
    all of them alike and their ratios hold. With `rotate`, each round starts one callable
    later, so that none always follows the same neighbour (whose spinning threads or warm
    caches it would inherit)."""
    if warmup < 0 or rounds < 1:
        raise UsageError(f"need warmup >= 0 and rounds >= 1, got {warmup} and {rounds}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        shift = r % len(names) if rotate else 0
        for k in names[shift:] + names[:shift]:
            fn = fns[k]
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1000.0)
    return {k: summarize(v) for k, v in times.items()}


def interleaved_models(configs: dict[str, tuple], inputs: dict, *, threads: int | None = None,
                       warmup: int = 3, rounds: int = 20) -> dict[str, LatencyStats]:
    """`interleaved` over graphs: {label: (backend, model path[, runner options])}, each
    opened once and run on the same `inputs` (compute only)."""
    from contextlib import ExitStack


    with ExitStack() as stack:
        runners = {k: stack.enter_context(get_runner(b, p, threads=threads,
                                                     **(rest[0] if rest else {})))
                   for k, (b, p, *rest) in configs.items()}
        return interleaved({k: (lambda r=r: r.infer(inputs)) for k, r in runners.items()},
                           warmup=warmup, rounds=rounds)
