"""Making and measuring optimize's candidates: artifacts and mIoU (both cached in the work
directory), and latency (interleaved, never cached)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner, model_file
from edgeseg.bench.latency import interleaved
from edgeseg.core.artifact import package_versions, read_meta
from edgeseg.core.errors import EdgesegError
from edgeseg.core.preprocess import input_preprocess
from edgeseg.core.shapes import dynamic_batch
from edgeseg.evaluate import GraphPredictor, evaluate_side_by_side
from edgeseg.pipeline import Plan, calibration_stage, export_stage, quantize_stage
from edgeseg.pipeline.optimize.candidates import Candidate, Source, graph_io
from edgeseg.quant.config import QuantizationError
from edgeseg.runtime.segmenter import Segmenter

Log = Callable[[str], None]


class Builder:
    """The artifacts of the candidates, made once per (kind, graph I/O) and kept in the work
    directory: FP32 by export_stage, INT8 by quantize_stage from the FP32 graph of the same
    I/O (a refusal is kept too, so a rerun does not quantize again)."""

    def __init__(self, source: Source, log: Log) -> None:
        self.source, self.plan, self.log = source, source.plan, log
        # what an INT8 graph (and a refusal) depends on besides the source and size: the
        # calibration set and the budget quantize tunes and judges it on
        p = self.plan
        self.calib_key = _hash([str(Path(p.data).resolve()), p.calib_images])
        self.quant_key = _hash([self.calib_key, p.val_limit, p.quant])

    def path(self, kind: str, output: str, fused: bool, dynamic: bool = False) -> Path:
        tag = f"-{self.quant_key}" if kind.startswith("int8") else ""
        return (Path(self.plan.workdir) / "artifacts" / f"{kind}{tag}-{output}"
                f"{'-fused' if fused else ''}{'-dynamic-batch' if dynamic else ''}")

    def get(self, c: Candidate, *, dynamic: bool = False) -> Path:
        """The candidate's artifact (with a dynamic batch: its twin for batched runs);
        QuantizationError when INT8 was refused, NotBuildable when a fixed artifact (no
        checkpoint) cannot give this graph I/O or batch."""
        if c.artifact_kind == "fp32":
            return self.fp32(c.output, c.fused, dynamic)
        return self.int8(c.artifact_kind.removeprefix("int8-"), c.output, c.fused, dynamic)

    def fp32(self, output: str, fused: bool, dynamic: bool = False) -> Path:
        fixed = self.source.fixed
        if fixed is not None:
            if graph_io(fixed) != (output, fused):
                raise NotBuildable(
                    f"needs a re-export with output {output}"
                    f"{' and fused preprocessing' if fused else ''}, and the artifact's "
                    "checkpoint is not at the path meta.json records")
            if dynamic and not dynamic_batch(fixed["input"]):
                raise NotBuildable(
                    "a batch above 1 needs the graph exported with --dynamic batch, and the "
                    "artifact's checkpoint is not at the path meta.json records")
            return self.source.artifact
        out = self.path("fp32", output, fused, dynamic)
        if not _valid(out):
            self.log(f"export: fp32 {output}{' fused' if fused else ''}"
                     f"{', dynamic batch' if dynamic else ''}")
            export_stage(self.plan, "fp32", out, log=_quiet(self.log), output=output,
                         fuse_preprocess=fused, dynamic="batch" if dynamic else None)
        return out

    def int8(self, target: str, output: str, fused: bool, dynamic: bool = False) -> Path:
        out = self.path(f"int8-{target}", output, fused, dynamic)
        refused = out.parent / f"{out.name}.refused.txt"
        if _valid(out):
            return out
        if refused.is_file():
            raise QuantizationError(refused.read_text())
        fp32 = self.fp32(output, fused, dynamic)
        self.log(f"quantize: int8 for {target}, {output}{' fused' if fused else ''}"
                 f"{', dynamic batch' if dynamic else ''}")
        try:
            quantize_stage(self.plan, fp32, self.calibration(), target, out,
                           log=_quiet(self.log),
                           range_cache=str(Path(self.plan.workdir) / "ranges"))
        except QuantizationError as e:
            refused.parent.mkdir(parents=True, exist_ok=True)
            refused.write_text(str(e))
            raise
        return out

    def calibration(self) -> Path:
        root = Path(self.plan.workdir) / f"calibration-{self.calib_key}"
        if not (root / "calibration.json").is_file():
            self.log(f"calibration: {self.plan.calib_images} train images")
            calibration_stage(self.plan, root, log=_quiet(self.log))
        return root


class NotBuildable(EdgesegError):
    """This source cannot give that artifact (a fixed graph without its checkpoint)."""


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


def build(builder: Builder, cands: list[Candidate]) -> None:
    """Give each pending candidate its artifact, or a status that says why it has none."""
    for c in cands:
        if c.status != "pending":
            continue
        try:
            c.artifact = builder.get(c)
        except QuantizationError as e:
            c.status, c.why = "refused", f"quantize refused it: {first_line(e)}"
        except NotBuildable as e:
            c.status, c.why = "skipped", str(e)


def _valid(path: Path) -> bool:
    try:
        read_meta(path)
        return True
    except EdgesegError:
        return False


def _quiet(log: Log) -> Log:
    """The stages' own lines, indented under optimize's."""
    return lambda line: log("    " + line)


def first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]


# -- accuracy ----------------------------------------------------------------------------
def _score_key(c: Candidate, val: str, limit: int | None) -> str:
    meta = read_meta(c.artifact, verify=False)
    # engine versions too: a failure to load (cached like a score) may be fixed by an upgrade
    text = json.dumps([meta["files"], c.engine, c.hint, str(Path(val).resolve()), limit,
                       package_versions()])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def score(cands: list[Candidate], plan: Plan, dataset, *, progress: bool, log: Log) -> None:
    """mIoU on the val split for every candidate with an artifact, side by side in one pass
    over the images for those not scored before (the rest come from the cache)."""
    cache = Path(plan.workdir) / "scores"
    cache.mkdir(parents=True, exist_ok=True)
    keys = {c.name: _score_key(c, plan.data, plan.val_limit) for c in cands}
    todo = [c for c in cands if not (cache / f"{keys[c.name]}.json").is_file()]
    if todo:
        log(f"score: {len(todo)} candidate(s) on "
            f"{min(plan.val_limit or len(dataset), len(dataset))} val images")
        with ExitStack() as stack:
            predictors = {}
            for c in todo:
                meta = read_meta(c.artifact)
                try:
                    runner = stack.enter_context(get_runner(
                        c.engine, c.artifact / model_file(meta, c.engine),
                        threads=plan.threads, output_names=[meta["output"]["name"]],
                        **({"precision": c.hint} if c.hint else {})))
                except EdgesegError as e:  # e.g. OpenVINO cannot compile a U8 graph for f16
                    (cache / f"{keys[c.name]}.json").write_text(json.dumps(
                        {"failed": f"the engine cannot load it: {first_line(e)}",
                         "candidate": c.name}))
                    continue
                predictors[c.name] = GraphPredictor(runner, meta)
            metrics, _ = evaluate_side_by_side(predictors, dataset, progress=progress,
                                               limit=plan.val_limit) if predictors else ({}, {})
        for c in todo:
            if c.name in metrics:
                m = metrics[c.name]
                (cache / f"{keys[c.name]}.json").write_text(json.dumps(
                    {"miou": m.miou, "images": m.images, "candidate": c.name}))
    for c in cands:
        got = json.loads((cache / f"{keys[c.name]}.json").read_text())
        if "failed" in got:
            c.status, c.why = "failed", got["failed"]
        else:
            c.miou = got["miou"]


# -- latency -----------------------------------------------------------------------------
def frame(dataset, size: tuple[int, int], meta: dict) -> np.ndarray:
    """The timed input: the first val image at the deployment size, uint8 HxWx3."""
    image, _ = dataset[0]
    return input_preprocess({**meta["input"], "size": list(size)}).resize_image(image)


def time_all(cands: list[Candidate], image: np.ndarray, *, threads: int | None, warmup: int,
             rounds: int) -> None:
    """Frame to full-resolution label map through runtime.Segmenter (the host's pre- and
    postprocessing included), every candidate side by side in interleaved rounds."""
    with ExitStack() as stack:
        segs = {}
        for c in cands:
            try:
                seg = stack.enter_context(Segmenter(c.artifact, backend=c.engine,
                                                    threads=threads, inference_precision=c.hint))
                seg.predict(image)  # one run here, so that a failing one fails alone
            except EdgesegError as e:
                c.status, c.why, c.latency = "failed", f"cannot run it: {first_line(e)}", None
                continue
            segs[c.name] = seg
        stats = interleaved({k: (lambda s=s: s.predict(image)) for k, s in segs.items()},
                            warmup=warmup, rounds=rounds, rotate=True)
    for c in cands:
        if c.name not in stats:
            continue
        s = stats[c.name]
        c.latency = {"p50": s.median_ms, "p99": s.p99_ms, "mean": s.mean_ms, "min": s.min_ms,
                     "rounds": s.iters}
