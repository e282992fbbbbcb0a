"""Parity: the artifact in each backend against the PyTorch reference, on the same inputs.

Reported as Polygraphy's comparator would: max abs diff of the output, argmax agreement
(the share of pixels whose predicted class matches), and, when labels are given, the mIoU
of each side and their delta.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Per precision: what an export must reach against PyTorch FP32 to be written.
# mean_rel_diff: mean absolute difference over mean reference magnitude (an absolute bound
# would mean different things for logits, probabilities and untrained weights). The maximum
# is reported but not bounded: in SegNet a 1e-6 difference can move a 2x2 window's maximum
# and with it an unpooled activation, a large local difference on a few pixels that argmax
# agreement already measures.
THRESHOLDS = {
    "fp32": {"argmax_agreement": 0.999, "mean_rel_diff": 1e-3},
    "fp16": {"argmax_agreement": 0.995, "mean_rel_diff": None},
    # INT8 is judged by val mIoU against FP32 and by ONNX Runtime vs OpenVINO agreement
    # (quant/int8.py); against PyTorch this bound only catches a broken graph.
    "int8": {"argmax_agreement": 0.95, "mean_rel_diff": None},
}


class ParityError(RuntimeError):
    """The exported graph does not compute what the model computes."""


@dataclass(frozen=True)
class ParityResult:
    backend: str
    inputs: int
    max_abs_diff: float | None  # None for label outputs
    max_rel_diff: float | None
    mean_rel_diff: float | None
    argmax_agreement: float
    miou_reference: float | None = None
    miou_backend: float | None = None

    def failures(self, thresholds: dict) -> list[str]:
        out = []
        if not self.argmax_agreement >= thresholds["argmax_agreement"]:
            out.append(f"argmax agreement {self.argmax_agreement:.5f} < "
                       f"{thresholds['argmax_agreement']}")
        limit = thresholds.get("mean_rel_diff")
        if self.mean_rel_diff is not None and not math.isfinite(self.mean_rel_diff):
            out.append(f"non-finite outputs (max abs diff {self.max_abs_diff})")
        elif limit is not None and self.mean_rel_diff is not None \
                and not self.mean_rel_diff <= limit:
            out.append(f"mean relative diff {self.mean_rel_diff:.3g} > {limit}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def to_labels(output: np.ndarray, kind: str) -> np.ndarray:
    """N x H x W class ids from any output kind."""
    return output.astype(np.int64) if kind.startswith("labels") else output.argmax(1)


def compare_outputs(backend: str, ref: list[np.ndarray], got: list[np.ndarray], kind: str,
                    labels: list[np.ndarray] | None = None,
                    num_classes: int | None = None) -> ParityResult:
    for r, g in zip(ref, got):
        if r.shape != g.shape:
            raise ParityError(f"{backend}: output shape {g.shape} differs from the reference's "
                              f"{r.shape}")
    diff = rel = mean_rel = None
    if not kind.startswith("labels"):
        d = [np.abs(r.astype(np.float64) - g) for r, g in zip(ref, got)]
        diff = float(max(x.max() for x in d))
        rel = diff / (float(max(np.abs(r).max() for r in ref)) or 1.0)
        mean_rel = float(np.mean([x.mean() for x in d])) / (
            float(np.mean([np.abs(r).mean() for r in ref])) or 1.0)
    ref_l = [to_labels(r, kind) for r in ref]
    got_l = [to_labels(g, kind) for g in got]
    agree = float(np.mean(np.concatenate([(a == b).ravel() for a, b in zip(ref_l, got_l)])))
    miou_ref = miou_got = None
    if labels is not None and num_classes:
        from edgeseg.evaluate import ConfusionMatrix

        cms = [ConfusionMatrix(num_classes), ConfusionMatrix(num_classes)]
        for lab, a, b in zip(labels, ref_l, got_l):
            if lab is None:  # an input without labels (the extra batch-of-two check)
                continue
            cms[0].update(a[0], lab)
            cms[1].update(b[0], lab)
        miou_ref, miou_got = (cm.metrics().miou for cm in cms)
    return ParityResult(backend, len(ref), diff, rel, mean_rel, agree, miou_ref, miou_got)


def run_backend(backend: str, model_path: Path, inputs: list[np.ndarray], input_name: str,
                output: dict | None = None, threads: int | None = None,
                **options) -> list[np.ndarray]:
    """Outputs of `backend` on `inputs`; with `output` (the artifact's meta), each is checked
    to carry the promised name and dtype. `options` go to the backend's Runner."""
    from edgeseg.backends import get_runner

    results = []
    names = [output["name"]] if output else None
    with get_runner(backend, model_path, threads=threads, output_names=names,
                    **options) as runner:
        for x in inputs:
            named = runner.infer({input_name: x})
            if output is not None:
                if list(named) != [output["name"]]:
                    raise ParityError(f"{backend}: outputs {list(named)}, but meta.json "
                                      f"promises one named {output['name']!r}")
                arr = named[output["name"]]
                if arr.dtype != np.dtype(output["dtype"]):
                    raise ParityError(f"{backend}: output dtype {arr.dtype}, but meta.json "
                                      f"promises {output['dtype']}")
            results.append(next(iter(named.values())))
    return results
