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

from edgeseg.core.errors import CheckFailed, UsageError

DEFAULT_OPSET = 17


def op_counts(model) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def graph_opset(model) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, *,
                opset: int = DEFAULT_OPSET, dynamic: tuple[dict, dict] | None = None,
                input_name: str = "input", output_name: str = "output") -> str:
    """Export `module(example)` to a single-file ONNX at `path` (weights inside); returns
    which exporter wrote it.

    torch's dynamo exporter writes opset 18 or newer only, so opset 17 (what TensorRT 8.x
    and older runtimes accept best) goes through the TorchScript exporter, which every model
    here supports since their deploy forms need no MaxUnpool or adaptive pooling.

    `dynamic`: ({input axis: (name, min, max)}, {output axis: name}) for a dynamic batch or
    size, else every dimension is the example's. The TorchScript exporter traces the shape
    arithmetic (the padding to the size divisor) as graph ops; the dynamo exporter needs a
    model whose code torch.export can trace symbolically, and says so when it cannot."""
    if opset < 17:
        raise UsageError(f"opset {opset} is too old; edgeseg exports opset 17 or newer")
    use_dynamo = opset >= 18
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), _quiet("torch.onnx", "onnxscript"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if use_dynamo:
                dims = None if dynamic is None else ({
                    axis: torch.export.Dim(name, min=lo, max=hi)
                    for axis, (name, lo, hi) in dynamic[0].items()},)
                torch.onnx.export(module, (example,), str(path), dynamo=True,
                                  external_data=False, opset_version=opset,
                                  input_names=[input_name], output_names=[output_name],
                                  dynamic_shapes=dims)
            else:
                axes = None if dynamic is None else {
                    input_name: {a: name for a, (name, _, _) in dynamic[0].items()},
                    output_name: dynamic[1]}
                torch.onnx.export(module, (example,), str(path), dynamo=False,
                                  opset_version=opset, input_names=[input_name],
                                  output_names=[output_name], dynamic_axes=axes,
                                  do_constant_folding=True)
    except Exception as e:  # the exporters raise many types; keep their log for the user
        hint = ""
        if use_dynamo and dynamic is not None and len(dynamic[0]) > 1:
            hint = ("\n(a dynamic height/width: export with --opset 17, whose TorchScript "
                    "exporter traces the shape arithmetic that torch.export could not)")
        raise CheckFailed(f"ONNX export failed: {e}{hint}\n--- exporter output ---\n"
                           f"{buf.getvalue()[-4000:]}") from e
    return (f"torch.onnx {'dynamo' if use_dynamo else 'torchscript'} exporter, "
            f"torch {torch.__version__}")


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
