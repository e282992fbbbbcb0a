"""The second INT8 route: NNCF post-training quantization of the OpenVINO model, written as
an INT8 OpenVINO IR (FakeQuantize, what OpenVINO's own tools produce).

It uses the same calibration set and preprocessing as the Q/DQ route, so the two can be
compared on the same validation split (benchmarks/int8_accuracy.md). NNCF's defaults for a
CPU target apply: symmetric INT8 activations (the PERFORMANCE preset), fast bias correction,
and the overflow fix on the first layer only. The artifact holds the IR and no ONNX: its
only engine is OpenVINO, where it is accepted or refused against the FP32 artifact as the
Q/DQ route's graphs are (accept.decide), with no cross-engine agreement to record.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from edgeseg.backends import require, tools
from edgeseg.core.artifact import write_meta
from edgeseg.core.capabilities import TARGETS
from edgeseg.core.compare import agreement, to_labels
from edgeseg.core.errors import EngineUnavailable, UsageError
from edgeseg.data.io import atomic_output_dir
from edgeseg.export.parity import THRESHOLDS
from edgeseg.quant import accept
from edgeseg.quant.config import check_config, open_inputs
from edgeseg.quant.engines import score
from edgeseg.quant.int8 import calibration_inputs


def quantize_nncf(cfg, *, log: Callable[[str], None] = print, progress: bool = True) -> dict:
    engine = _check_route(cfg)
    src, meta, cs, val_set, _ = open_inputs(cfg)

    out = Path(cfg.out)
    with atomic_output_dir(out, overwrite=cfg.force, flag="--force") as tmp:
        inputs, held = accept.holdout_split(calibration_inputs(cs, meta["input"]), cfg)
        log(f"NNCF: calibrating on {len(inputs)} images of {cs.root} ({len(held)} held out "
            "for the check)")
        tools(engine).nncf_quantize(src / "model.onnx", tmp / "model.xml", inputs,
                                    progress=progress)

        fp32_agree, all_pixels, share = _held_out_agreement(engine, src / "model.onnx",
                                                            tmp / "model.xml", meta, held,
                                                            cfg, log)
        accuracy = {}
        if val_set is not None:
            accuracy = _val_accuracy(engine, src / "model.onnx", tmp / "model.xml", meta,
                                     val_set, cfg, log, progress)
        acceptance = accept.decide(cfg, accuracy=accuracy, fp32_agree=fp32_agree,
                                   n_held=len(held), search=None,
                                   engine_words=f"{engine} running the NNCF IR",
                                   blamer=lambda: None, log=log, decided_share=float(share),
                                   all_pixels=all_pixels)
        new = dict(meta)
        new.update(
            precision="int8", files={"model.xml": None, "model.bin": None}, builds=[],
            calibration=_calibration_record(cfg, cs, engine, len(inputs), len(held)),
            accuracy=accuracy, acceptance=acceptance,
            parity={"thresholds": THRESHOLDS["int8"], "results": [], "backend_agreement": {
                "not_applicable": f"the NNCF IR runs in {engine} only"}},
            source={"artifact": str(src.resolve()), "onnx_sha256": meta["files"]["model.onnx"]},
        )
        write_meta(tmp, new)
    log(f"wrote {out}")
    return new


def _check_route(cfg) -> str:
    """Refuse what this route cannot do; returns the engine the IR is judged in."""
    check_config(cfg)
    if "nncf" not in TARGETS[cfg.target].routes:
        with_nncf = [t.name for t in TARGETS.values() if "nncf" in t.routes]
        raise UsageError(f"--route nncf writes an IR for {', '.join(with_nncf)}: use --target "
                         f"{with_nncf[0]} (not {cfg.target}), or --route qdq for {cfg.target}")
    if cfg.max_drop is not None or cfg.exclude_nodes:
        raise UsageError("--route nncf takes no --max-drop or --exclude-node yet; use "
                         "the Q/DQ route for an accuracy budget")
    if importlib.util.find_spec("nncf") is None:
        raise EngineUnavailable("--route nncf needs NNCF: pip install 'edgeseg[nncf]'")
    engine = TARGETS[cfg.target].judged_in
    require(engine)
    return engine


def _held_out_agreement(engine: str, fp32: Path, ir: Path, meta: dict, held: list, cfg,
                        log: Callable[[str], None]) -> tuple[float, float, float]:
    """(agreement on the pixels FP32 decides, on all pixels, the decided share) of the IR
    with the FP32 graph on the held-out calibration images."""
    kind = meta["output"]["kind"]
    ref_out = accept.outputs(engine, fp32, meta, held, cfg.threads)
    ref = [to_labels(o, kind) for o in ref_out]
    where = accept.decided(ref_out, kind, cfg.decided_margin)
    got = accept.labels(engine, ir, meta, held, cfg.threads)
    fp32_agree, all_pixels = agreement(ref, got, where), agreement(ref, got)
    share = 1.0 if where is None else sum(w.mean() for w in where) / len(where)
    log(f"INT8 IR vs FP32 in {engine}: {100 * fp32_agree:.2f}% of the pixels FP32 decides "
        f"keep their class ({100 * all_pixels:.2f}% of all) on {len(held)} held-out "
        "calibration images")
    return fp32_agree, all_pixels, share


def _val_accuracy(engine: str, fp32: Path, ir: Path, meta: dict, val_set, cfg,
                  log: Callable[[str], None], progress: bool) -> dict:
    """meta.json's accuracy section: FP32 and the IR scored on the val split."""
    metrics, agree = score({"fp32": (engine, fp32), f"int8-{engine}": (engine, ir)},
                           meta, val_set, limit=cfg.val_limit, threads=cfg.threads,
                           progress=progress)
    ref, m = metrics["fp32"].miou, metrics[f"int8-{engine}"].miou
    accuracy = {
        "dataset": str(Path(cfg.val).resolve()), "split": "val",
        "images": metrics["fp32"].images, "held_out": True, "tuned_on": None,
        "reference_miou": ref, "reference": f"FP32 artifact in {engine}",
        "engine": engine, "mode": "kernels",
        "miou": {engine: m}, "drop_points": {engine: 100 * (ref - m)},
        "per_class_iou": {k: v.per_class_iou for k, v in metrics.items()},
        "agreement": agree,
    }
    log(f"val mIoU: FP32 {ref:.4f}; INT8 (NNCF) {engine} {m:.4f} "
        f"({100 * (ref - m):+.2f} points drop)")
    return accuracy


def _calibration_record(cfg, cs, engine: str, n_calib: int, n_held: int) -> dict:
    return {
        "route": "nncf", "set": str(cs.root.resolve()), "hash": cs.hash,
        "images": n_calib, "set_images": len(cs), "held_out_images": n_held,
        "target": cfg.target,
        "quantizer": f"nncf.quantize {tools(engine).nncf_version()} "
                     f"({engine} backend, PERFORMANCE preset, CPU)",
        "weights": "int8 symmetric per-channel (overflow fix on the first layer)",
        "activations": "int8 symmetric per-tensor", "tensorrt_cache": None,
        "float_layers": [],
    }
