"""Accept or refuse an INT8 graph on what the user deploys: its accuracy against the FP32
artifact, both run in the target's own arithmetic (config.ENGINE).

- With labels (--val): the mIoU drop on images nothing was tuned on. Without a budget that
  is the whole val split (limit `accept_drop`); with --max-drop the search tunes on one half
  of the split and the drop is reported on the other half, or on --test (limit `max_drop`).
- Without labels: the share of pixels whose class is unchanged, on calibration images held
  out of the ranges (limit `min_fp32_agreement`), counted where the FP32 model has decided:
  its top class leads the runner-up by at least `decided_margin` in probability. A pixel
  the FP32 model nearly ties on flips under any perturbation and costs no accuracy in
  expectation (SegNet, trained here: 96% of all pixels but 99% of decided ones keep their
  class, for a mIoU drop of 0.0-0.2 points); counting it would refuse good graphs for the
  same reason cross-engine agreement does. Label outputs carry no scores: all pixels count.

Agreement of the two CPU engines on the same file is measured and recorded as a diagnostic,
a gate only when asked for. A refusal names the figure, the limit and the layers that a
sensitivity analysis blames, and the caller writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.core.capabilities import CPU_ENGINES, ENGINES, TARGETS
from edgeseg.core.compare import agreement, to_labels
from edgeseg.core.errors import UsageError
from edgeseg.core.progress import progress_bar
from edgeseg.export.parity import run_backend
from edgeseg.quant import kernels, qdq
from edgeseg.quant.config import ENGINE, QuantConfig, QuantizationError, mode_options
from edgeseg.quant.engines import score

ENGINE_WORDS = {t.name: t.judged_words for t in TARGETS.values()}
REF, OTHER = CPU_ENGINES  # the two CPU engines every INT8 graph is compared across


def holdout_split(inputs: list, cfg: QuantConfig) -> tuple[list, list]:
    """(images for the ranges, held-out images for the label-free check): the last
    min(holdout, len/8) images of the calibration set never calibrate."""
    k = max(1, min(cfg.holdout, len(inputs) // 8))
    return inputs[:-k], inputs[-k:]


def budget_split(val_set, test_set):
    """(tune, report) datasets for a --max-drop search: val tunes and --test reports, or
    val's even-numbered images tune and its odd-numbered ones report."""
    if test_set is not None:
        return val_set, test_set
    if len(val_set) < 2:
        raise UsageError(f"--max-drop: the val split has {len(val_set)} image; tuning "
                                "and reporting need at least 2 (or name a --test dataset)")
    return (val_set.subset(range(0, len(val_set), 2)),
            val_set.subset(range(1, len(val_set), 2)))


def outputs(engine: str, path: Path, meta: dict, inputs: list[np.ndarray],
            threads: int | None, mode: str | None = None) -> list[np.ndarray]:
    """Raw outputs of `path` run in `engine` (in `mode` of config.mode_options for a Q/DQ graph)."""

    options = mode_options(mode) if mode else {}
    return run_backend(engine, path, inputs, meta["input"]["name"], threads=threads, **options)


def labels(engine: str, path: Path, meta: dict, inputs: list[np.ndarray],
           threads: int | None, mode: str | None = None) -> list[np.ndarray]:
    """Class ids of `path` run in `engine`."""

    return [to_labels(o, meta["output"]["kind"])
            for o in outputs(engine, path, meta, inputs, threads, mode)]


def decided(outs: list[np.ndarray], kind: str, margin: float) -> list[np.ndarray] | None:
    """Per image, the pixels where the top class's probability leads the runner-up's by at
    least `margin` (None for label outputs, which carry no scores, or a margin of 0)."""
    if kind.startswith("labels") or margin <= 0:
        return None
    masks = []
    for o in outs:
        p = o.astype(np.float64)
        if kind != "probs":
            p = np.exp(p - p.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
        top2 = np.partition(p, -2, axis=1)[:, -2:]
        masks.append(top2[:, 1] - top2[:, 0] >= margin)
    return masks


BLAME_IMAGES = 8  # one session per quantized layer: a refusal should not take an hour


def blame(build: Callable[[tuple[str, ...], Path], Path], candidates: list[str],
          reference: list[np.ndarray], where: list[np.ndarray] | None,
          inputs: list[np.ndarray], meta: dict, target: str, work: Path,
          threads: int | None, *, top: int = 5,
          progress: bool = True) -> list[tuple[str, float]]:
    """The layers whose INT8 version moves the most pixels: for each quantized layer, the
    agreement with FP32 (on the `where` pixels) it gives back when it alone stays in float,
    on the first BLAME_IMAGES of `inputs`."""

    engine, mode = ENGINE[target]
    n = min(BLAME_IMAGES, len(inputs))
    reference, inputs = reference[:n], inputs[:n]
    where = where[:n] if where is not None else None
    base = agreement(reference, labels(engine, build((), work / "blame.onnx"), meta, inputs,
                                       threads, mode), where)
    gains = []
    for layer in progress_bar(candidates, desc="sensitivity (blame)", enable=progress,
                              unit="layer"):
        path = build((layer,), work / "blame.onnx")
        gains.append((layer, agreement(reference, labels(engine, path, meta, inputs, threads,
                                                           mode), where) - base))
    gains.sort(key=lambda g: -g[1])
    return gains[:top]


def refusal(figure: str, limit: str, blamed: list[tuple[str, float]] | None, hint: str,
            unit: str = "% of pixels") -> str:
    if blamed is None:
        return f"{figure} (limit {limit}). {hint}; nothing was written"
    names = ", ".join(f"{k} (+{100 * g:.2f}{unit} back in float)" for k, g in blamed
                      if g > 0) or "no single layer (the loss is spread over many)"
    return (f"{figure} (limit {limit}); the layers a sensitivity analysis blames: {names}. "
            f"{hint}; nothing was written")


def judge(*, model_path: Path, src: Path, meta: dict, cfg: QuantConfig, held: list,
          report_set, search: dict | None, build, work: Path, log, progress: bool) -> dict:
    """Measure the INT8 graph and accept it or raise QuantizationError: returns the meta
    sections {"accuracy", "acceptance", "backend_agreement"}."""
    engine, mode = ENGINE[cfg.target]
    fp32 = src / "model.onnx"
    ho = _held_out(model_path, fp32, meta, cfg, held, log)
    accuracy: dict = {}
    if report_set is not None:
        accuracy = _report_accuracy(model_path, fp32, meta, cfg, report_set, search, log,
                                    progress)
        ho.cross[mode]["val"] = accuracy["agreement"][f"int8-{REF}|int8-{OTHER}"]
    blamer = functools.partial(_blame_quantized, build, model_path, ho.ref, ho.where, held,
                               meta, cfg, work, progress)
    acceptance = decide(cfg, accuracy=accuracy, fp32_agree=ho.fp32_agree, n_held=len(held),
                        search=search, engine_words=ENGINE_WORDS[cfg.target], blamer=blamer,
                        log=log, decided_share=ho.share, all_pixels=ho.all_pixels)
    floors = _check_engine_agreement(cfg, ho.cross, log, model_path)
    return {"accuracy": accuracy, "acceptance": acceptance,
            "backend_agreement": {f"{REF}_vs_{OTHER}": ho.cross,
                                  "gate": "enforced" if cfg.require_engine_agreement
                                  else "diagnostic",
                                  "minimum": floors}}


@dataclass(frozen=True)
class _HeldOut:
    """The label-free figures, on the held-out calibration images."""
    ref: list[np.ndarray]  # FP32's classes
    where: list[np.ndarray] | None  # the pixels FP32 decides (None: all)
    fp32_agree: float  # INT8 keeps FP32's class, on the `where` pixels
    all_pixels: float  # the same on all pixels
    share: float  # of the pixels, those FP32 decides
    cross: dict  # mode -> {images: agreement of the two CPU engines}


def _held_out(model_path: Path, fp32: Path, meta: dict, cfg: QuantConfig, held: list,
              log) -> _HeldOut:
    engine, mode = ENGINE[cfg.target]
    # Label-free: the FP32 artifact and the INT8 graph in the target's arithmetic, on
    # calibration images the ranges never saw; plus both engines in both modes (diagnostic).
    kind = meta["output"]["kind"]
    ref_out = outputs(engine, fp32, meta, held, cfg.threads)
    ref = [to_labels(o, kind) for o in ref_out]
    where = decided(ref_out, kind, cfg.decided_margin)
    runs = {(e, m): labels(e, model_path, meta, held, cfg.threads, m)
            for e in CPU_ENGINES for m in ("reference", "kernels")}
    fp32_agree = agreement(ref, runs[engine, mode], where)
    all_pixels = agreement(ref, runs[engine, mode])
    cross = {m: {"held_out_calibration_images": agreement(runs[REF, m], runs[OTHER, m])}
             for m in ("reference", "kernels")}
    share = 1.0 if where is None else float(np.mean([w.mean() for w in where]))
    log(f"INT8 vs FP32 in {ENGINE_WORDS[cfg.target]}, {len(held)} held-out calibration "
        f"images: {100 * fp32_agree:.2f}% of the pixels FP32 decides ({100 * share:.0f}% of "
        f"all) keep their class; {100 * all_pixels:.2f}% of all pixels do")
    return _HeldOut(ref=ref, where=where, fp32_agree=fp32_agree, all_pixels=all_pixels,
                    share=share, cross=cross)


def _report_accuracy(model_path: Path, fp32: Path, meta: dict, cfg: QuantConfig, report_set,
                     search: dict | None, log, progress: bool) -> dict:
    """meta.json's accuracy section: FP32 and INT8 in both CPU engines on `report_set`."""
    engine, mode = ENGINE[cfg.target]
    models = {"fp32": (engine, fp32, {}),
              **{f"int8-{e}": (e, model_path, mode_options(mode))
                 for e in CPU_ENGINES}}
    metrics, agree = score(models, meta, report_set, limit=cfg.val_limit,
                           threads=cfg.threads, progress=progress)
    ref_miou = metrics["fp32"].miou
    int8 = {k.split("-", 1)[1]: m for k, m in metrics.items() if k != "fp32"}
    tuned = search is not None
    accuracy = {
        "dataset": str(Path(cfg.test or cfg.val).resolve()),
        "split": "val" if cfg.test or not tuned else "val, odd-numbered images",
        "images": metrics["fp32"].images, "held_out": True,
        "tuned_on": ({"dataset": str(Path(cfg.val).resolve()),
                      "split": "val" if cfg.test else "val, even-numbered images",
                      "images": search["tune_images"]} if tuned else None),
        "reference_miou": ref_miou, "reference": f"FP32 artifact in {engine}",
        "engine": engine, "mode": mode,
        "miou": {k: m.miou for k, m in int8.items()},
        "drop_points": {k: 100 * (ref_miou - m.miou) for k, m in int8.items()},
        "per_class_iou": {k: m.per_class_iou for k, m in metrics.items()},
        "agreement": agree,
    }
    log(f"mIoU on {accuracy['images']} held-out images: FP32 {ref_miou:.4f}; INT8 "
        + ", ".join(f"{k} {m.miou:.4f} ({100 * (ref_miou - m.miou):+.2f} points drop)"
                    for k, m in int8.items()))
    return accuracy


def _blame_quantized(build, model_path: Path, ref: list[np.ndarray],
                     where: list[np.ndarray] | None, held: list, meta: dict, cfg: QuantConfig,
                     work: Path, progress: bool) -> list[tuple[str, float]]:
    """`blame` over every quantized layer of the graph at `model_path`."""
    import onnx

    candidates = qdq.quantized_compute_nodes(onnx.load(str(model_path)))
    return blame(build, candidates, ref, where, held, meta, cfg.target, work, cfg.threads,
                 progress=progress)


def _check_engine_agreement(cfg: QuantConfig, cross: dict, log, model_path: Path) -> dict:
    """Warn (or refuse, when required) where the two CPU engines disagree below the floors,
    naming the layers an engine's INT8 kernels miscompute when that is the cause; returns
    the floors."""
    engine = ENGINE[cfg.target][0]
    # TensorRT's graph in the CPU engines' INT8 kernels is not what its user runs (and its
    # full-range weights saturate them on CPUs without VNNI): recorded, never warned about.
    floors = {"reference": cfg.min_agreement,
              "kernels": cfg.min_kernel_agreement if cfg.target != "tensorrt" else None}
    for m, floor in floors.items():
        worst = min(cross[m].values())
        if floor is not None and worst < floor:
            msg = (f"{ENGINES[REF].title} and {ENGINES[OTHER].title} ({m}) agree on "
                   f"{100 * worst:.2f}% of pixels of this INT8 graph (< {100 * floor:.1f}%)")
            if cfg.require_engine_agreement:
                raise QuantizationError(msg + " and --require-engine-agreement was given; "
                                        "nothing was written")
            cause = (_disagreement_cause(model_path, m, cfg.threads) if cfg.kernel_check
                     else "the two engines round near-ties differently")
            log(f"warning: {msg}: {cause}; the "
                f"graph is judged in {engine}, the engine it is for")
    return floors


def _disagreement_cause(model_path: Path, mode: str, threads: int | None) -> str:
    """Why two engines disagree on a Q/DQ graph: the layers an engine's INT8 kernels
    miscompute (kernels.py), or else rounding."""
    import onnx

    if mode == "kernels":
        q = onnx.load(str(model_path))
        for name in CPU_ENGINES:
            try:
                found = kernels.faults(q, name, threads=threads)
            except Exception:  # a diagnostic: the warning stands without a cause
                found = []
            if found:
                return (f"{ENGINES[name].title}'s INT8 kernels miscompute "
                        + ", ".join(f"{f['node']} ({f['error']:.0%} of its range)"
                                    for f in found) + " on this CPU")
    return "the two engines round near-ties differently"


def decide(cfg: QuantConfig, *, accuracy: dict, fp32_agree: float, n_held: int,
           search: dict | None, engine_words: str, blamer, log, decided_share: float = 1.0,
           all_pixels: float | None = None) -> dict:
    """The acceptance record (meta.json), or QuantizationError naming the figure, the limit
    and the layers `blamer()` blames. `accuracy` is empty without labels."""
    engine, mode = ENGINE[cfg.target]
    if accuracy:
        figure, limit = accuracy["drop_points"][engine], (
            cfg.max_drop if search is not None else cfg.accept_drop)
        passed = figure <= limit + 1e-9
        acceptance = {"criterion": "miou_drop", "figure": figure, "limit": limit,
                      "images": accuracy["images"], "on": "held-out val images"}
        words = (f"the INT8 graph loses {figure:.2f} mIoU points against FP32 in "
                 f"{engine_words} on {accuracy['images']} held-out images")
        limit_words = f"{limit} points" + (" (--max-drop)" if search is not None else "")
    else:
        figure, limit = fp32_agree, cfg.min_fp32_agreement
        passed = figure >= limit
        acceptance = {"criterion": "fp32_agreement", "figure": figure, "limit": limit,
                      "images": n_held, "on": "calibration images held out of the ranges",
                      "decided_margin": cfg.decided_margin if decided_share < 1 else 0.0,
                      "decided_pixels": decided_share}
        which = "the pixels FP32 decides" if decided_share < 1 else "pixels"
        words = (f"the INT8 graph keeps the FP32 class on only {100 * figure:.2f}% of {which} "
                 f"in {engine_words} ({n_held} held-out calibration images)")
        limit_words = f"{100 * limit:.1f}%"
    acceptance.update(engine=engine, mode=mode, passed=passed, fp32_agreement=fp32_agree,
                      fp32_agreement_all_pixels=fp32_agree if all_pixels is None
                      else all_pixels)
    if search is not None:
        acceptance["budget_met"] = passed
        accuracy["budget"] = search
    if not passed:
        if search is not None and cfg.keep_best:
            log(f"WARNING: {words} (budget {limit_words}); keeping the best graph found "
                "(--keep-best): meta.json records that the budget was missed")
        else:
            unit = "% of pixels"
            if search is not None and search["sensitivity"]:
                blamed = [(s["layer"], s["gain_points"] / 100)
                          for s in search["sensitivity"][:5]]
                unit = " mIoU points on the tuning images"
            else:
                blamed = blamer()
            hint = ("Give --max-drop a budget (it keeps the blamed layers in float), keep "
                    "them with --exclude-node NAME, or try --method entropy")
            if search is not None:
                hint = ("Allow more float layers (--max-float-layers), a larger budget, or "
                        "--keep-best to write the best graph anyway")
            if blamed is None:
                hint = ("This route has no per-layer analysis: the Q/DQ route (--route qdq) "
                        "names the layers and --max-drop keeps them in float")
            raise QuantizationError(refusal(words, limit_words, blamed, hint, unit))
    return acceptance
