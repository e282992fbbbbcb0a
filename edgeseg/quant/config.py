"""INT8 settings shared by both routes (Q/DQ in int8.py, NNCF in nncf_route.py): targets,
engine modes, agreement gates, the configuration, and the checks on what is quantized."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeseg.export.artifact import ArtifactError, read_meta
from edgeseg.quant import calib as calibration
from edgeseg.quant import qdq

# weight_bits 7 is the overflow fix (NNCF applies it for CPUs without VNNI): x86 INT8
# kernels without VNNI add pairs of u8*s8 products in 16 bits, which saturate when weights
# use the full range. Measured on an AVX2 host: both ONNX Runtime's fused kernels and
# OpenVINO's then drift from the Q/DQ graph's arithmetic by up to a third of a layer's output
# range; with 7-bit weights both match it to 1e-6. TensorRT on NVIDIA GPUs accumulates
# exactly, so its target keeps 8 bits and is checked against the reference arithmetic.
# --weight-bits 8 for CPUs with VNNI or AMX.
TARGETS = {
    "tensorrt": {"activations": "int8", "symmetric": True, "weight_bits": 8,
                 "check": "reference"},
    "openvino": {"activations": "int8", "symmetric": True, "weight_bits": 7,
                 "check": "kernels"},
    "onnxruntime": {"activations": "uint8", "symmetric": False, "weight_bits": 7,
                    "check": "kernels"},
}
# How each engine runs a Q/DQ graph: with its fused integer kernels (what a CPU user gets),
# or as the reference arithmetic (Q/DQ computed as written, in float).
MODES = {
    "kernels": {"onnxruntime": {}, "openvino": {}},
    "reference": {"onnxruntime": {"int8_kernels": False}, "openvino": {"int8_kernels": False}},
}
METHODS = ("minmax", "entropy", "percentile")
# The class decision stays in float: quantized logits tie, and argmax/softmax cost nothing.
DEFAULT_EXCLUDE_OPS = ("ArgMax", "Softmax")
# ONNX Runtime and OpenVINO computing the same Q/DQ file as written must agree on this share
# of pixels. Their fused INT8 kernels round and align scales differently (BiSeNetV1,
# openvino target: 98.9% here), so for the CPU targets they get a looser floor that still
# catches a pattern one engine gets wrong (the padded-pool case: 94%).
MIN_AGREEMENT = 0.995
MIN_KERNEL_AGREEMENT = 0.98
AGREEMENT_IMAGES = 16


class QuantizationError(RuntimeError):
    """Quantization that cannot start, or a result that failed its checks."""


@dataclass(frozen=True)
class QuantConfig:
    artifact: str
    calib: str
    out: str
    target: str = "tensorrt"
    method: str = "minmax"
    percentile: float = 99.999
    exclude_nodes: tuple[str, ...] = ()
    exclude_ops: tuple[str, ...] = DEFAULT_EXCLUDE_OPS
    per_channel: bool = True
    weight_bits: int | None = None  # None: the target's default (TARGETS)
    val: str | None = None  # dataset root; its val split scores FP32 vs INT8
    val_limit: int | None = None
    max_drop: float | None = None  # mIoU points against the FP32 artifact
    sensitivity_images: int = 48
    max_float_layers: int = 12
    min_agreement: float = MIN_AGREEMENT
    min_kernel_agreement: float = MIN_KERNEL_AGREEMENT
    trt_version: str = "10.3.0"  # header of the TensorRT calibration cache
    threads: int | None = None
    range_cache: str | None = None  # directory of calibration ranges keyed by content hashes
    force: bool = False


def weight_bits(cfg: QuantConfig) -> int:
    return cfg.weight_bits or TARGETS[cfg.target]["weight_bits"]


def activation_scheme(target: str) -> str:
    t = TARGETS[target]
    return f"{t['activations']} {'symmetric' if t['symmetric'] else 'asymmetric'} per-tensor"


def check_config(cfg: QuantConfig) -> None:
    if cfg.target not in TARGETS:
        raise ValueError(f"--target {cfg.target}: choose one of {', '.join(TARGETS)}")
    if cfg.method not in METHODS:
        raise ValueError(f"--method {cfg.method}: choose one of {', '.join(METHODS)}")
    if not 50 < cfg.percentile < 100:
        raise ValueError(f"--percentile {cfg.percentile}: must be in (50, 100), e.g. 99.999")
    if cfg.weight_bits not in (None, 7, 8):
        raise ValueError(f"--weight-bits {cfg.weight_bits}: 8 (full INT8) or 7 (overflow fix)")
    if cfg.max_drop is not None and cfg.max_drop < 0:
        raise ValueError(f"--max-drop {cfg.max_drop}: must be >= 0 (mIoU points)")
    if cfg.max_drop is not None and not cfg.val:
        raise ValueError("--max-drop needs --val DATASET: the budget is measured on its "
                         "validation split")


def check_source(directory: Path, meta: dict):
    import onnx

    if meta["precision"] != "fp32":
        raise QuantizationError(
            f"{directory} is a {meta['precision']} artifact; quantize its FP32 source instead "
            "(INT8 is computed from FP32 weights and FP32 calibration ranges)")
    if "model.onnx" not in meta["files"]:
        raise ArtifactError(f"{directory}: no model.onnx to quantize")
    model = onnx.load(str(directory / "model.onnx"))
    if qdq.is_quantized(model):
        raise QuantizationError(f"{directory}/model.onnx is already quantized (it has "
                                "QuantizeLinear/DequantizeLinear or integer ops); quantize the "
                                "FP32 model it came from")
    return model


def check_val(val: str, meta: dict):
    from edgeseg.data.datasets import DatasetError, open_dataset

    try:
        ds = open_dataset(val, "val")
    except DatasetError as e:
        raise QuantizationError(f"--val: {e}") from None
    want = list(meta["classes"]["names"])
    if list(ds.classes.names) != want:
        raise QuantizationError(
            f"--val {val}: its classes ({', '.join(ds.classes.names)}) are not the artifact's "
            f"({', '.join(want)}); validate on data labelled with the model's class set")
    return ds


def open_inputs(cfg: QuantConfig):
    """(source dir, its meta, calibration set, val dataset or None), every check done before
    any work: a source that is FP32 and not yet quantized, a set for its geometry, a val
    split with its classes."""
    src = Path(cfg.artifact)
    meta = read_meta(src)
    check_source(src, meta)
    cs = calibration.load(cfg.calib)
    calibration.check_matches(cs, meta["input"])
    return src, meta, cs, (check_val(cfg.val, meta) if cfg.val else None)
