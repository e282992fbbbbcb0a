"""Running INT8 graphs in both engines: side-by-side scoring on a dataset and pixel
agreement between the two CPU engines (CPU_ENGINES), in either mode of config.mode_options."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner
from edgeseg.core.capabilities import CPU_ENGINES
from edgeseg.core.compare import to_labels
from edgeseg.evaluate import GraphPredictor, evaluate_side_by_side
from edgeseg.export.parity import run_backend
from edgeseg.quant.config import mode_options


def _runner_predictor(backend: str, path: Path, meta: dict, threads: int | None, **options):

    runner = get_runner(backend, path, threads=threads, output_names=[meta["output"]["name"]],
                        **options)
    runner.__enter__()
    return runner, GraphPredictor(runner, meta)


def score(models: dict[str, tuple[str, Path]], meta: dict, dataset, *, limit=None,
          threads=None, progress=False):
    """{label: (backend, onnx path[, runner options])} scored side by side on the dataset."""

    runners, predictors = [], {}
    try:
        for label, (backend, path, *options) in models.items():
            r, p = _runner_predictor(backend, path, meta, threads, **(options[0] if options
                                                                         else {}))
            runners.append(r)
            predictors[label] = p
        return evaluate_side_by_side(predictors, dataset, progress=progress, limit=limit)
    finally:
        for r in runners:
            r.__exit__(None, None, None)


def backend_agreement(path: Path, meta: dict, inputs: list[np.ndarray],
                      threads: int | None = None, mode: str = "kernels") -> float:
    """Share of pixels where the two CPU engines give the same label on `inputs`,
    both running in `mode` (MODES)."""

    name, kind = meta["input"]["name"], meta["output"]["kind"]
    a, b = (run_backend(e, path, inputs, name, threads=threads, **mode_options(mode))
            for e in CPU_ENGINES)
    return float(np.mean([np.mean(to_labels(x, kind) == to_labels(y, kind))
                          for x, y in zip(a, b)]))
