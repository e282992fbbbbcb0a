"""PyTorch -> ONNX (torch's dynamo exporter, one file) and simplification."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

DEFAULT_OPSET = 17


def op_counts(model) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, *,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
                input_name: str = "input", output_name: str = "output") -> None:
    """Export `module(example)` to a single-file ONNX at `path` (weights inside)."""
    if opset < 17:
        raise ValueError(f"opset {opset} is too old; edgeseg exports opset 17 or newer")
    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    # The exporter prints progress and warnings of its own; keep them out of our output
    # unless it fails.
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), _quiet("torch.onnx", "onnxscript"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                module, (example,), str(path), dynamo=True, external_data=False,
                opset_version=opset, input_names=[input_name], output_names=[output_name],
                dynamic_shapes=dynamic_shapes,
            )
    except Exception as e:  # the exporter raises many types; keep its log for the user
        raise RuntimeError(f"ONNX export failed: {e}\n--- exporter output ---\n"
                           f"{buf.getvalue()[-4000:]}") from e


@contextlib.contextmanager
def _quiet(*names: str):
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def simplify(path: Path, log: Callable[[str], None] = print) -> dict:
    """Simplify the ONNX at `path` in place with onnxsim (onnxslim as the fallback); return
    {simplifier, ops_before, ops_after} and log the op counts."""
    import onnx

    model = onnx.load(str(path))
    before = op_counts(model)
    simplified, tool = None, None
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
        tool = f"onnxsim {getattr(onnxsim, '__version__', '')}".strip()
        if not ok:
            simplified = None
    except ImportError:
        pass
    if simplified is None:
        try:
            import onnxslim

            simplified, tool = onnxslim.slim(model), "onnxslim"
        except ImportError:
            log("no simplifier installed (pip install onnxsim or onnxslim); graph left as is")
            return {"simplifier": None, "ops_before": dict(before), "ops_after": dict(before)}
    onnx.checker.check_model(simplified)
    onnx.save(simplified, str(path))
    after = op_counts(simplified)
    log(f"simplified with {tool}: {sum(before.values())} -> {sum(after.values())} nodes "
        f"({_diff(before, after)})")
    return {"simplifier": tool, "ops_before": dict(before), "ops_after": dict(after)}


def _diff(before: Counter, after: Counter) -> str:
    parts = []
    for op in sorted(set(before) | set(after)):
        if before[op] != after[op]:
            parts.append(f"{op} {before[op]}->{after[op]}")
    return ", ".join(parts) or "no change"
