"""Parity: the artifact in each backend against the PyTorch reference, on the same inputs.

Reported as Polygraphy's comparator would: max abs diff of the output, argmax agreement
(the share of pixels whose predicted class matches), and, when labels are given, the mIoU
of each side and their delta.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner
from edgeseg.core.compare import ParityError

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


def run_backend(backend: str, model_path: Path, inputs: list[np.ndarray], input_name: str,
                output: dict | None = None, threads: int | None = None,
                **options) -> list[np.ndarray]:
    """Outputs of `backend` on `inputs`; with `output` (the artifact's meta), each is checked
    to carry the promised name and dtype. `options` go to the backend's Runner."""

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
