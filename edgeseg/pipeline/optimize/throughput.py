"""The pick's throughput: frames per second with 1 and 2 callers at batch 1, and, through its
dynamic-batch twin (the same configuration exported with a dynamic batch and quantized from
the same calibration set), at every batch asked for; the best batch is measured with 2
callers too."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from edgeseg.backends import runner_takes
from edgeseg.core.errors import EdgesegError, EngineUnavailable
from edgeseg.core.shapes import dynamic_batch
from edgeseg.pipeline.optimize.candidates import Candidate, Result
from edgeseg.pipeline.optimize.measure import Builder, first_line
from edgeseg.runtime.segmenter import Segmenter

Log = Callable[[str], None]
PICK, TWIN = "pick", "dynamic-batch twin"


def measure(res: Result, builder: Builder, image: np.ndarray, *, batches: tuple[int, ...],
            seconds: float, threads: int | None, want_twin: bool, log: Log) -> None:
    """Fill res.throughput (one row per artifact x batch x callers) and res.batching (the
    twin, its agreement with the pick, the best batch). With seconds <= 0 nothing is timed
    (the twin is still made when `want_twin`)."""
    w = res.winner
    if seconds <= 0:  # no timing: only the twin that --dynamic-batch writes
        batches = ()
    for streams in (1, 2) if batches else ():
        _row(res, w.artifact, PICK, w, image, 1, streams, seconds, threads, log)
    if not want_twin and max(batches, default=1) < 2:
        return
    try:
        twin = builder.get(w, dynamic=True)
    except EdgesegError as e:  # refused by quantize, not buildable, a failed parity check
        res.batching = {"failed": first_line(e)}
        log(f"throughput above batch 1 not measured: {first_line(e)}")
        return
    res.batching = {"artifact": str(twin), "agreement": agreement(w, twin, image, threads)}
    if res.batching["agreement"] < 0.995:
        log(f"warning: the dynamic-batch twin agrees with the pick on only "
            f"{100 * res.batching['agreement']:.2f}% of the frame's pixels")
    if not batches:
        return
    sizes = sorted(set(batches) | {1})
    try:
        rows = sweep(twin, w, image, sizes, seconds=seconds, threads=threads)
    except EdgesegError as e:
        res.batching["failed"] = first_line(e)
        log(f"throughput above batch 1 not measured: {first_line(e)}")
        return
    for b in sizes:
        res.throughput.append({"artifact": TWIN, "batch": b, "streams": 1, **rows[b]})
        log(f"throughput of the {TWIN}: {rows[b]['fps']:.1f} frames/s at batch {b} with 1 "
            f"caller ({rows[b]['layout']})")
    best = max(sizes, key=lambda b: rows[b]["fps"])
    res.batching["best_batch"] = best
    if best > 1:
        _row(res, twin, TWIN, w, image, best, 2, seconds, threads, log)


def agreement(c: Candidate, twin: Path, image: np.ndarray, threads: int | None) -> float:
    """Share of the frame's pixels where the twin, run on a batch of two copies, gives the
    pick's label (both copies counted)."""
    with Segmenter(c.artifact, backend=c.engine, threads=threads,
                   inference_precision=c.hint) as a, \
            Segmenter(twin, backend=c.engine, threads=threads, inference_precision=c.hint) as b:
        ref = a.predict(image)
        got = b.predict_batch([image, image])
    return float(np.mean([np.mean(g == ref) for g in got]))


def _row(res: Result, artifact: Path, which: str, c: Candidate, image: np.ndarray, batch: int,
         streams: int, seconds: float, threads: int | None, log: Log) -> None:
    base = {"artifact": which, "batch": batch, "streams": streams}
    try:
        t = throughput(artifact, c, image, batch=batch, streams=streams, seconds=seconds,
                       threads=threads)
    except EdgesegError as e:
        res.throughput.append({**base, "failed": str(e)})
        log(f"throughput of the {which}, batch {batch}, {streams} caller(s), not measured: "
            f"{first_line(e)}")
        return
    res.throughput.append({**base, **t})
    log(f"throughput of the {which}: {t['fps']:.1f} frames/s at batch {batch} with "
        f"{streams} caller(s) ({t['layout']})")


def sweep(artifact: Path, c: Candidate, image: np.ndarray, batches: list[int], *,
          seconds: float, threads: int | None, rounds: int = 3) -> dict[int, dict]:
    """Frames per second of one caller at each batch size, `seconds` each in all, measured in
    `rounds` rotated slices (each round starting one batch size later) so that a drift in
    this shared machine's load does not favour the sizes measured first."""
    done = {b: [0, 0.0] for b in batches}
    with ExitStack() as stack:
        segs, layout = _callers(stack, artifact, c, 1, threads)
        for b in batches:
            segs[0].predict_batch([image] * b)  # compiles what a batch size needs
        for r in range(rounds):
            for b in batches[r % len(batches):] + batches[:r % len(batches)]:
                frames, elapsed = _loop(segs, [image] * b, seconds / rounds)
                done[b][0] += frames
                done[b][1] += elapsed
    return {b: {"fps": round(n / t, 2), "layout": layout, "frames": n, "seconds": round(t, 2),
                "rounds": rounds} for b, (n, t) in done.items()}


def throughput(artifact: Path, c: Candidate, image: np.ndarray, *, batch: int = 1,
               streams: int, seconds: float, threads: int | None) -> dict:
    """Frames per second with `streams` callers, each looping `batch` frames -> label maps
    for `seconds` after a warm-up call."""
    with ExitStack() as stack:
        segs, layout = _callers(stack, artifact, c, streams, threads)
        if batch > 1 and not dynamic_batch(segs[0].meta["input"]):
            raise EngineUnavailable(f"{artifact} has a fixed batch of 1")
        frames, elapsed = _loop(segs, [image] * batch, seconds)
    return {"fps": round(frames / elapsed, 2), "layout": layout, "frames": frames,
            "seconds": round(elapsed, 2)}


def _callers(stack: ExitStack, artifact: Path, c: Candidate, streams: int,
             threads: int | None) -> tuple[list[Segmenter], str]:
    """One Segmenter per caller. An engine whose runner takes `streams` (OpenVINO's
    NUM_STREAMS) serves them from one model with that many streams and `threads` in all;
    otherwise each caller gets its own session with `threads` // `streams` threads. (Two
    OpenVINO models of one thread each would both be pinned to the same core: measured at
    half the frames of one model with two streams.)"""
    total = threads or len(os.sched_getaffinity(0))

    def open_(n: int | None, **options) -> Segmenter:
        return stack.enter_context(Segmenter(artifact, backend=c.engine, threads=n,
                                             inference_precision=c.hint, **options))

    if streams > 1 and runner_takes(c.engine, "streams"):
        return ([open_(total, runner_options={"streams": streams})] * streams,
                f"one model, {streams} streams, {total} threads")
    if streams == 1:
        return [open_(threads)], f"one session, {threads or 'default'} threads"
    per = max(1, total // streams)
    return [open_(per) for _ in range(streams)], f"{streams} sessions x {per} thread(s)"


def _loop(segs: list[Segmenter], frames: list[np.ndarray], seconds: float
          ) -> tuple[int, float]:
    """Each Segmenter in its own thread, one warm-up call, then calls until `seconds` have
    passed since all were ready: (frames labelled, seconds)."""
    counts = [0] * len(segs)
    errors: list[BaseException] = []
    ready = threading.Barrier(len(segs) + 1)
    deadline = [float("inf")]

    def loop(i: int) -> None:
        try:
            segs[i].predict_batch(frames)
            ready.wait(timeout=600)
            while time.perf_counter() < deadline[0]:
                segs[i].predict_batch(frames)
                counts[i] += len(frames)
        except BaseException as e:  # noqa: BLE001 - reported below, not lost in a thread
            errors.append(e)
            ready.abort()
            deadline[0] = 0.0

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(len(segs))]
    for w in workers:
        w.start()
    try:
        ready.wait(timeout=600)
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    if not errors:
        deadline[0] = t0 + seconds
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise EngineUnavailable(f"{len(segs)} caller(s) at batch {len(frames)} failed: "
                                f"{first_line(errors[0])}") from errors[0]
    return sum(counts), elapsed
