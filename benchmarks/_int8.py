"""What the INT8 benchmark scripts share (int8_accuracy.py, int8_vs_modelopt.py): the trained
baselines exported at their training size, one calibration set, edgeseg's INT8 artifacts
made once and cached, and scoring on images that no quantizer saw.

Three kinds of images, never mixed:
- calibration: CALIB_IMAGES images of the training data's train split (edgeseg holds the last
  16 out of its ranges for its label-free acceptance check; ModelOpt and ONNX Runtime's
  defaults get the same ranges images);
- tuning: the training data's val split, which `--max-drop` splits again (even-numbered images
  choose the float layers, odd-numbered ones report inside quantize);
- held-out: the val split of a second synthetic set (another seed), which no tool sees; every
  figure in the tables comes from it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from edgeseg.baseline import DEFAULT_CACHE, RECIPES
from edgeseg.core.artifact import sha256
from edgeseg.data.calibration import load
from edgeseg.pipeline import Plan, calibration_stage, export_stage, quantize_stage
from edgeseg.quant.config import QuantizationError

SIZE = (128, 256)
CALIB_IMAGES = 256
DATA = DEFAULT_CACHE / "synth-128x256-n1200-seed0"  # what the baselines were trained on
HELD_OUT = DEFAULT_CACHE / "synth-128x256-n1200-seed1"
WORK = DEFAULT_CACHE / "int8-bench"
MODELS = list(RECIPES)


def log_for(model: str):
    def log(s: str) -> None:
        print(f"[{model}] {s}", flush=True)
    return log


def held_out_data() -> Path:
    """The second synthetic set (seed 1), generated on first use."""
    if not HELD_OUT.is_dir():
        from edgeseg.data.synthetic import write_dataset

        write_dataset(HELD_OUT, 1200, SIZE, seed=1, progress=False)
    return HELD_OUT


def checkpoint(model: str) -> Path | None:
    p = DEFAULT_CACHE / "baselines" / f"{model}-{SIZE[0]}x{SIZE[1]}.pt"
    return p if p.is_file() else None


def fp32_artifact(model: str) -> Path:
    """The baseline exported in FP32 at the training size (ONNX and OpenVINO IR), cached
    until the checkpoint changes."""
    ckpt = checkpoint(model)
    out = WORK / model / "fp32"
    stamp = out.parent / "fp32.checkpoint-sha256"
    digest = sha256(ckpt)
    if not (out / "meta.json").is_file() or not stamp.is_file() or \
            stamp.read_text() != digest:
        export_stage(Plan(WORK, checkpoint=ckpt, size=SIZE), "fp32", out, log=log_for(model))
        stamp.write_text(digest)
        for stale in out.parent.iterdir():  # graphs made from the previous checkpoint
            if stale.is_dir() and stale.name != "fp32":
                shutil.rmtree(stale)
            elif stale.is_file() and stale != stamp:
                stale.unlink()
    return out


def calibration_set():
    root = WORK / "calib"
    if (root / "calibration.json").is_file():
        return load(root)
    return calibration_stage(Plan(WORK, size=SIZE, data=str(DATA), calib_images=CALIB_IMAGES),
                             root, log=print)


def quantizer_digest() -> str:
    """A digest of edgeseg's quantizer sources (quant/, the ONNX Runtime quantizer calls and
    the target table): cached INT8 artifacts are remade when the quantizer changes."""
    import hashlib

    import edgeseg

    root = Path(edgeseg.__file__).parent
    h = hashlib.sha256()
    for f in [*sorted((root / "quant").glob("*.py")), root / "backends/onnxruntime/quantizer.py",
              root / "core/capabilities.py"]:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def edgeseg_int8(model: str, target: str, *, max_drop: float | None = None,
                 route: str = "qdq") -> tuple[Path | None, str | None]:
    """(artifact, None) or (None, refusal message): `edgeseg quantize` with default settings
    and no labels, or with --val DATA --max-drop; cached with its outcome."""
    name = f"{route}-{target}" + (f"-budget{max_drop:g}" if max_drop is not None else "")
    out = WORK / model / name
    # Beside the artifact, named after all of it (with_suffix would cut "budget0.3" at the dot).
    refused = out.parent / f"{name}.refused"
    stamp, code = out.parent / f"{name}.quantizer-sha256", quantizer_digest()
    if stamp.is_file() and stamp.read_text() == code:
        if (out / "meta.json").is_file():
            return out, None
        if refused.is_file():
            return None, refused.read_text()
    shutil.rmtree(out, ignore_errors=True)  # made by another version of the quantizer
    refused.unlink(missing_ok=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)  # a model's first run
    stamp.write_text(code)
    plan = Plan(WORK, size=SIZE, threads=os.cpu_count())
    try:
        quantize_stage(plan, fp32_artifact(model), calibration_set().root, target, out,
                       route=route, log=log_for(model), force=False, max_drop=max_drop,
                       val=str(DATA) if max_drop is not None else None,
                       range_cache=str(WORK / "ranges"))
    except QuantizationError as e:
        refused.write_text(str(e))
        return None, str(e)
    return out, None


def score(models: dict[str, tuple[str, Path, dict]], meta: dict) -> dict:
    """{label: Metrics} and {pair: agreement} of every model on the held-out val split."""
    from edgeseg.data.datasets import open_dataset
    from edgeseg.quant.engines import score as score_side_by_side

    ds = open_dataset(held_out_data(), "val")
    return score_side_by_side(models, meta, ds, threads=os.cpu_count(), progress=False)


def qdq_pairs(path: Path) -> int:
    import onnx

    return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)


def load_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.is_file() else []
