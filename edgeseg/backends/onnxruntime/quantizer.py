"""ONNX Runtime's quantization tooling (onnxruntime.quantization and its float16 converter),
used by quant/ and export/: this folder is the only place that imports onnxruntime."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import numpy as np


def version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def prepare(src: Path, dst: Path, *, symbolic: bool = True) -> None:
    """Shape inference only: ORT's graph optimisations would rename the nodes that
    exclusions, reports and the TensorRT cache refer to. `symbolic=False` skips ORT's
    symbolic shape inference, which cannot finish on a dynamic-size graph (its padding to
    the size divisor is computed from the input's shape); ONNX's own inference still runs."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # In a directory of its own: when symbolic inference fails, ORT leaves its temporary
    # model (and external-data files) in the current directory.
    src, dst = Path(src).resolve(), Path(dst).resolve()
    with tempfile.TemporaryDirectory(prefix="edgeseg-prepare-") as scratch, \
            contextlib.chdir(scratch):
        quant_pre_process(str(src), str(dst), skip_optimization=True,
                          skip_symbolic_shape=not symbolic)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over prepared inputs."""

    def __init__(self, name: str, inputs: list[np.ndarray]) -> None:
        self.name, self.inputs, self.i = name, inputs, 0

    def get_next(self):
        if self.i >= len(self.inputs):
            return None
        self.i += 1
        return {self.name: self.inputs[self.i - 1]}

    def __iter__(self):
        return self

    def __next__(self):
        x = self.get_next()
        if x is None:
            raise StopIteration
        return x

    def __len__(self) -> int:
        return len(self.inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.inputs, self.i = self.inputs[start_index:end_index], 0


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


def read_ranges(path: Path) -> dict[str, tuple[float, float]]:
    from onnxruntime.quantization.calibrate import load_tensors_data

    tensors = load_tensors_data(path)
    out = {}
    for name in tensors:
        lo, hi = tensors[name].range_value
        out[name] = (float(np.asarray(lo).min()), float(np.asarray(hi).max()))
    return out


CALIB_CHUNK_BYTES = 4 << 30  # float tensors held per calibration pass


def activation_bytes(model_path: Path) -> int:
    """Bytes of all float tensors one input produces (from shape inference): what ONNX
    Runtime's calibrator holds per image. A symbolic dimension (a dynamic batch) counts as
    1, one image; a tensor with no known shape is not counted."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
    total = 0
    for vi in [*model.graph.value_info, *model.graph.output]:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (1 if d.dim_param else 0)
                for d in t.shape.dim]
        if t.elem_type == onnx.TensorProto.FLOAT and dims and all(d > 0 for d in dims):
            total += 4 * int(np.prod(dims))
    return total


def calibrate(model_path: Path, input_name: str, inputs: list[np.ndarray], *, method: str,
              symmetric: bool, percentile: float, ranges_path: Path
              ) -> dict[str, tuple[float, float]]:
    """Ranges of every float tensor of `model_path` over `inputs`, saved at `ranges_path`
    (where quantize_qdq reads them) and returned."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    options = {"symmetric": symmetric}
    if method == "percentile":
        options["percentile"] = percentile
    with tempfile.TemporaryDirectory(prefix="edgeseg-calib-") as tmp:
        calibrator = create_calibrator(model_path, None,
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=_method(method),
                                       extra_options=options)
        # ONNX Runtime keeps every tensor of every image it was given until it reduces them:
        # at 512x1024 that is gigabytes per image for SegNet. Feeding chunks makes it reduce
        # after each (ranges and histograms merge across calls; its own
        # CalibMaxIntermediateOutputs option drops them instead). Min/max ranges are exactly
        # those of one pass; entropy and percentile histograms take their bin width from the
        # first chunk, so with more than one chunk their thresholds shift somewhat.
        chunk = max(1, CALIB_CHUNK_BYTES // max(1, activation_bytes(model_path)))
        # Its histogram calibrators print their progress on stdout, which is the user's
        # (a report may be going there): keep it out.
        with contextlib.redirect_stdout(io.StringIO()):
            for i in range(0, len(inputs), chunk):
                calibrator.collect_data(_Reader(input_name, inputs[i:i + chunk]))
            tensors = calibrator.compute_data()
        del calibrator
    save_tensors_data(tensors, ranges_path)
    return read_ranges(ranges_path)


def quantize_qdq(prepared: Path, out: Path, ranges_path: Path, *, method: str,
                 per_channel: bool, reduce_range: bool, symmetric_activations: bool,
                 nodes_to_exclude: list[str], op_types: list[str] | None,
                 quantize_bias: bool, extra_options: dict) -> None:
    """quantize_static in QDQ format with the ranges calibrate() saved: S8 weights, S8
    (symmetric) or U8 activations."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    act = QuantType.QInt8 if symmetric_activations else QuantType.QUInt8
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" advice: done already
    try:
        quantize_static(str(prepared), str(out), None, quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, reduce_range=reduce_range,
                        activation_type=act, weight_type=QuantType.QInt8,
                        nodes_to_exclude=nodes_to_exclude, op_types_to_quantize=op_types,
                        calibrate_method=_method(method),
                        calibration_cache_path=str(ranges_path),
                        extra_options={"ActivationSymmetric": symmetric_activations,
                                       "WeightSymmetric": True, "QuantizeBias": quantize_bias,
                                       **extra_options})
    finally:
        root.setLevel(level)


def to_float16(model, block: tuple[str, ...]):
    """(the FP16 ModelProto with FP32 inputs and outputs, the op types kept in FP32): `block`
    plus the converter's own default list stay FP32."""
    from onnxruntime.transformers.float16 import (
        DEFAULT_OP_BLOCK_LIST,
        convert_float_to_float16,
    )

    # Passing a list replaces the converter's defaults (TopK, Range, Upsample, ...): add ours.
    block = tuple(dict.fromkeys([*DEFAULT_OP_BLOCK_LIST, *block]))
    return convert_float_to_float16(model, keep_io_types=True, op_block_list=list(block)), block
