"""INT8 settings shared by both routes (Q/DQ in int8.py, NNCF in nncf_route.py): targets,
the engine each is judged in, acceptance limits, the configuration, and the checks on what
is quantized."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeseg.core.artifact import ArtifactError, read_meta
from edgeseg.core.capabilities import TARGETS
from edgeseg.core.errors import CheckFailed, InputError, UsageError
from edgeseg.data import calibration
from edgeseg.data.datasets import DatasetError, open_dataset
from edgeseg.quant import qdq

# Targets (activation scheme, weight bits, the engine that judges them) are data in
# core/capabilities.py. weight_bits 7 is the overflow fix (NNCF applies it for CPUs without
# VNNI): x86 INT8 kernels without VNNI add pairs of u8*s8 products in 16 bits, which
# saturate when weights use the full range. Measured on an AVX2 host: both ONNX Runtime's
# fused kernels and OpenVINO's then drift from the Q/DQ graph's arithmetic by up to a third
# of a layer's output range; with 7-bit weights both match it to 1e-6. TensorRT on NVIDIA
# GPUs accumulates exactly, so its target keeps 8 bits and is checked against the reference
# arithmetic. --weight-bits 8 for CPUs with VNNI or AMX.
METHODS = ("minmax", "entropy", "percentile")
# The class decision stays in float: quantized logits tie, and argmax/softmax cost nothing.
DEFAULT_EXCLUDE_OPS = ("ArgMax", "Softmax")
# Acceptance is on what the user deploys: the INT8 graph against the FP32 artifact, both run in
# the target's own arithmetic (ENGINE). With labels (--val) the limit is a mIoU drop; without,
# the share of pixels whose class is unchanged, on calibration images held out of the ranges.
ACCEPT_DROP = 1.0  # mIoU points
MIN_FP32_AGREEMENT = 0.98
# ... counted on the pixels FP32 decides: top class ahead of the runner-up by this much
# probability (accept.py says why; 0 counts every pixel).
DECIDED_MARGIN = 0.1
HOLDOUT = 16  # calibration images kept out of the ranges for the label-free check (<= 1/8)
# Where each target's figures are measured: the engine and how it runs the Q/DQ graph
# ("kernels": its fused integer kernels, what a CPU user gets; "reference": the Q/DQ
# arithmetic as written, in float). TensorRT computes the Q/DQ arithmetic as written (exact
# int32 accumulation), which ONNX Runtime reproduces with its fused kernels off.
ENGINE = {t.name: (t.judged_in, t.mode) for t in TARGETS.values()}


def mode_options(mode: str) -> dict:
    """Runner options that run a Q/DQ graph in `mode` (every CPU runner takes them)."""
    return {} if mode == "kernels" else {"int8_kernels": False}


# ONNX Runtime vs OpenVINO on the same Q/DQ file: a diagnostic (two engines may round near-ties
# differently and both keep the model's accuracy), recorded and warned about below these
# floors; a gate only with require_engine_agreement. Their fused INT8 kernels round and align
# scales differently, hence the looser floor in that mode.
MIN_AGREEMENT = 0.995
MIN_KERNEL_AGREEMENT = 0.98
AGREEMENT_IMAGES = 16


class QuantizationError(CheckFailed):
    """Quantization that cannot start, or a result that failed its checks."""


@dataclass(frozen=True)
class QuantConfig:
    artifact: str
    calib: str
    out: str
    target: str = "tensorrt"
    method: str = "percentile"
    percentile: float = 99.999
    exclude_nodes: tuple[str, ...] = ()
    exclude_ops: tuple[str, ...] = DEFAULT_EXCLUDE_OPS
    per_channel: bool = True
    weight_bits: int | None = None  # None: the target's default (TARGETS)
    val: str | None = None  # dataset root; its val split scores FP32 vs INT8
    val_limit: int | None = None
    max_drop: float | None = None  # budget: mIoU points against FP32; drives the fallback
    accept_drop: float = ACCEPT_DROP  # the limit with --val and no budget
    min_fp32_agreement: float = MIN_FP32_AGREEMENT  # the limit without --val
    decided_margin: float = DECIDED_MARGIN
    holdout: int = HOLDOUT
    test: str | None = None  # dataset whose val split reports a budget's drop (else half of val)
    keep_best: bool = False  # a missed budget writes the best graph (meta says so) instead
    sensitivity_images: int = 48
    max_float_layers: int = 12
    rules: bool = True  # the quantizer rules of rules.py (False: ORT's placement as it comes)
    quantize_image_convs: bool = False  # True: switch off the image-convs rule
    kernel_check: bool = True  # the engine-faults rule (kernels.py), for kernel-judged targets
    require_engine_agreement: bool = False
    min_agreement: float = MIN_AGREEMENT
    min_kernel_agreement: float = MIN_KERNEL_AGREEMENT
    trt_version: str = "10.3.0"  # header of the TensorRT calibration cache
    threads: int | None = None
    range_cache: str | None = None  # directory of calibration ranges keyed by content hashes
    force: bool = False


def weight_bits(cfg: QuantConfig) -> int:
    return cfg.weight_bits or TARGETS[cfg.target].weight_bits


def activation_scheme(target: str) -> str:
    t = TARGETS[target]
    return f"{t.activations} {'symmetric' if t.symmetric else 'asymmetric'} per-tensor"


def check_config(cfg: QuantConfig) -> None:
    if cfg.target not in TARGETS:
        raise UsageError(f"--target {cfg.target}: choose one of {', '.join(TARGETS)}")
    if cfg.method not in METHODS:
        raise UsageError(f"--method {cfg.method}: choose one of {', '.join(METHODS)}")
    if not 50 < cfg.percentile < 100:
        raise UsageError(f"--percentile {cfg.percentile}: must be in (50, 100), e.g. 99.999")
    if cfg.weight_bits not in (None, 7, 8):
        raise UsageError(f"--weight-bits {cfg.weight_bits}: 8 (full INT8) or 7 (overflow fix)")
    if cfg.max_drop is not None and cfg.max_drop < 0:
        raise UsageError(f"--max-drop {cfg.max_drop}: must be >= 0 (mIoU points)")
    if cfg.max_drop is not None and not cfg.val:
        raise UsageError("--max-drop needs --val DATASET: the budget is measured on its "
                         "validation split")
    if cfg.test and cfg.max_drop is None:
        raise UsageError("--test reports the drop of a --max-drop search; without a budget "
                         "the whole --val split is already held out (nothing was tuned on it)")
    if cfg.keep_best and cfg.max_drop is None:
        raise UsageError("--keep-best keeps the best graph of a --max-drop search; give a "
                         "budget with --max-drop")
    if cfg.accept_drop < 0:
        raise UsageError(f"--accept-drop {cfg.accept_drop}: must be >= 0 (mIoU points)")
    if not 0 <= cfg.min_fp32_agreement <= 1:
        raise UsageError(f"--min-fp32-agreement {cfg.min_fp32_agreement}: a share in [0, 1], "
                         "e.g. 0.98")
    if not 0 <= cfg.decided_margin < 1:
        raise UsageError(f"--decided-margin {cfg.decided_margin}: a probability margin in "
                         "[0, 1), e.g. 0.1 (0 counts every pixel)")
    if cfg.holdout < 1:
        raise UsageError(f"--holdout {cfg.holdout}: at least 1 image")


def check_source(directory: Path, meta: dict):
    import onnx

    if meta["precision"] != "fp32":
        raise InputError(
            f"{directory} is a {meta['precision']} artifact; quantize its FP32 source instead "
            "(INT8 is computed from FP32 weights and FP32 calibration ranges)")
    if "model.onnx" not in meta["files"]:
        raise ArtifactError(f"{directory}: no model.onnx to quantize")
    model = onnx.load(str(directory / "model.onnx"))
    if qdq.is_quantized(model):
        raise InputError(f"{directory}/model.onnx is already quantized (it has "
                                "QuantizeLinear/DequantizeLinear or integer ops); quantize the "
                                "FP32 model it came from")
    return model


def check_val(val: str, meta: dict, flag: str = "--val"):
    """The val split of `val`, labelled with the artifact's classes."""

    try:
        ds = open_dataset(val, "val")
    except DatasetError as e:
        raise InputError(f"{flag}: {e} (it needs a val split of images with label "
                                "masks)") from None
    want = list(meta["classes"]["names"])
    have = list(ds.classes.names)
    if len(have) != len(want):
        raise InputError(
            f"{flag} {val}: {len(have)} classes, but the artifact predicts {len(want)} "
            f"({', '.join(want)}); score it on data labelled with the model's class set")
    if have != want:
        raise InputError(
            f"{flag} {val}: its classes ({', '.join(have)}) are not the artifact's "
            f"({', '.join(want)}); validate on data labelled with the model's class set")
    return ds


def open_inputs(cfg: QuantConfig):
    """(source dir, its meta, calibration set, val dataset or None, test dataset or None),
    every check done before any work: a source that is FP32 and not yet quantized, a set for
    its geometry, val and test splits with its classes."""
    src = Path(cfg.artifact)
    meta = read_meta(src)
    check_source(src, meta)
    cs = calibration.load(cfg.calib)
    calibration.check_matches(cs, meta["input"])
    val = check_val(cfg.val, meta) if cfg.val else None
    test = check_val(cfg.test, meta, "--test") if cfg.test else None
    return src, meta, cs, val, test
