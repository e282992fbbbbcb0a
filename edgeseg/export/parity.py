"""Parity: the artifact in each backend against the PyTorch reference, on the same inputs.

Reported as Polygraphy's comparator would: max abs diff of the output, argmax agreement
(the share of pixels whose predicted class matches), and, when labels are given, the mIoU
of each side and their delta.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Per precision: what an export must reach against PyTorch FP32 to be written.
THRESHOLDS = {
    "fp32": {"argmax_agreement": 0.999, "max_abs_diff": 1e-3},
    "fp16": {"argmax_agreement": 0.995, "max_abs_diff": None},
}


class ParityError(RuntimeError):
    """The exported graph does not compute what the model computes."""


@dataclass(frozen=True)
class ParityResult:
    backend: str
    inputs: int
    max_abs_diff: float | None  # None for label outputs
    argmax_agreement: float
    miou_reference: float | None = None
    miou_backend: float | None = None

    def failures(self, thresholds: dict) -> list[str]:
        out = []
        if self.argmax_agreement < thresholds["argmax_agreement"]:
            out.append(f"argmax agreement {self.argmax_agreement:.5f} < "
                       f"{thresholds['argmax_agreement']}")
        limit = thresholds.get("max_abs_diff")
        if limit is not None and self.max_abs_diff is not None and self.max_abs_diff > limit:
            out.append(f"max abs diff {self.max_abs_diff:.3g} > {limit}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def to_labels(output: np.ndarray, kind: str) -> np.ndarray:
    """N x H x W class ids from any output kind."""
    return output.astype(np.int64) if kind.startswith("labels") else output.argmax(1)


def compare_outputs(backend: str, ref: list[np.ndarray], got: list[np.ndarray], kind: str,
                    labels: list[np.ndarray] | None = None,
                    num_classes: int | None = None) -> ParityResult:
    diff = None
    if not kind.startswith("labels"):
        diff = float(max(np.abs(r.astype(np.float64) - g).max() for r, g in zip(ref, got)))
    ref_l = [to_labels(r, kind) for r in ref]
    got_l = [to_labels(g, kind) for g in got]
    agree = float(np.mean(np.concatenate([(a == b).ravel() for a, b in zip(ref_l, got_l)])))
    miou_ref = miou_got = None
    if labels is not None and num_classes:
        from edgeseg.evaluate import ConfusionMatrix

        cms = [ConfusionMatrix(num_classes), ConfusionMatrix(num_classes)]
        for lab, a, b in zip(labels, ref_l, got_l):
            cms[0].update(a[0], lab)
            cms[1].update(b[0], lab)
        miou_ref, miou_got = (cm.metrics().miou for cm in cms)
    return ParityResult(backend, len(ref), diff, agree, miou_ref, miou_got)


def run_backend(backend: str, model_path: Path, inputs: list[np.ndarray], input_name: str,
                threads: int | None = None) -> list[np.ndarray]:
    from edgeseg.backends import get_runner

    with get_runner(backend, model_path, threads=threads) as runner:
        return [next(iter(runner.infer({input_name: x}).values())) for x in inputs]
