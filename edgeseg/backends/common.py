"""What every engine's Runner shares: the description of its graph's tensors, the error for a
model file it cannot load, and the error for a runner used outside its `with` block. No
engine is imported here."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgeseg.core.artifact import ArtifactError


class TensorSpec(NamedTuple):
    """One graph input or output: its shape (None where a dimension is dynamic) and dtype."""
    shape: tuple[int | None, ...]
    dtype: np.dtype


def spec(shape, dtype) -> TensorSpec:
    """A TensorSpec from an engine's dims: anything that is not a non-negative int (ORT's
    symbolic names, TensorRT's -1, meta.json's "batch") is dynamic."""
    dims = tuple(int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None
                 for d in shape)
    return TensorSpec(dims, np.dtype(dtype))


class GraphIO:
    """The description every Runner gives of its graph: `inputs` and `outputs` (name ->
    TensorSpec, in the graph's order) from `_inputs`/`_outputs`, which a runner fills when it
    opens (or overrides these two properties), and the names derived from them."""
    _inputs: dict[str, TensorSpec]
    _outputs: dict[str, TensorSpec]

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    @property
    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._outputs)

    @property
    def input_names(self) -> list[str]:
        return list(self.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)


class RunnerClosed(RuntimeError):
    """infer() on a runner that is not open: a bug in the calling code, not a user error."""

    def __init__(self, engine: str) -> None:
        super().__init__(f"this {engine} runner is closed (or was never opened): call infer "
                         "inside `with get_runner(...) as runner:`")


def require_model_file(path: Path, engine: str) -> None:
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file for {engine}; check the path, or "
                            "re-export the artifact")


def engine_message(error: BaseException, limit: int = 240) -> str:
    """An engine exception as one line: OpenVINO's and TensorRT's span several lines, the
    first ones naming their own source files ("Exception from src/...", "Check ... failed
    at ..."); the last remaining line is the reason."""
    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Exception from ",
                                                                      "Check '"))]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_failed(path: Path, engine: str, error: BaseException) -> ArtifactError:
    """The error for a model file an engine refused: not a model, truncated, or a model for
    another engine."""
    return ArtifactError(f"{path}: {engine} cannot load it ({engine_message(error)}): not a "
                         "model file for this engine, or a truncated or damaged one; re-export "
                         "the artifact (or pass the right file)")
