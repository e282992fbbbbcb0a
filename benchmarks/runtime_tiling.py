"""Tiled (sliding-window) inference against a full-size reference: each model's 128x256 FP32
artifact serves frames with 4x its input area (256x512), cut into overlapping 128x256
windows; the reference is the same trained network (PyTorch) run on the whole frame at once.
Writes benchmarks/runtime_tiling.{json,md}.

    python benchmarks/runtime_tiling.py [--models ...] [--images 16] [--out benchmarks]

Needs the matrix artifacts (`edgeseg bench --matrix benchmarks/matrix.toml`) and their
checkpoints in the cache. The frames are synthetic scenes drawn at 256x512 (with labels), so
mIoU is reported beside the agreement.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from _results import save

from edgeseg.baseline import DEFAULT_CACHE

MODELS = ("bisenetv1", "bisenetv2", "icnet", "deeplabv3plus", "segnet")
OVERLAPS = (0.0, 0.25, 0.5)
FRAME = (256, 512)


def main() -> None:
    import torch

    from edgeseg.checkpoint import build_reference
    from edgeseg.core.compare import ConfusionMatrix
    from edgeseg.data.datasets import open_dataset
    from edgeseg.data.synthetic import write_dataset
    from edgeseg.runtime import Segmenter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "big", args.images * 5, FRAME, seed=7, progress=False)
        ds = open_dataset(Path(tmp) / "big", "val")
        n = min(args.images, len(ds))
        for model in args.models:
            art = args.cache / "matrix" / f"{model}-128x256-fp32"
            if not art.is_dir():
                print(f"[{model}] no artifact at {art}; run the benchmark matrix first")
                continue
            seg = Segmenter(art, backend="onnxruntime")
            ref = build_reference(seg.meta["model"], seg.meta["input"], "logits")
            pre = seg.pipeline.preprocess
            names = ["full", "resized", *(f"tiled-{o:g}" for o in OVERLAPS)]
            cms = {k: ConfusionMatrix(ds.classes.num_classes) for k in names}
            agree = {k: 0 for k in names[1:]}
            pixels = 0
            for i in range(n):
                image, labels = ds[i]
                x = torch.from_numpy(pre.normalize(image))[None]
                with torch.inference_mode():
                    full = ref(x)[0].argmax(0).numpy().astype(np.uint8)
                preds = {"full": full, "resized": seg.predict(image)}
                for o in OVERLAPS:
                    preds[f"tiled-{o:g}"] = seg.predict(image, tile=True, overlap=o)
                for k, p in preds.items():
                    cms[k].update(p, labels)
                    if k != "full":
                        agree[k] += int((p == full).sum())
                pixels += full.size
            seg.close()
            row = {"model": model, "artifact_input": seg.input_size, "frame": list(FRAME),
                   "images": n, "miou": {k: cms[k].metrics().miou for k in names},
                   "agreement_with_full": {k: v / pixels for k, v in agree.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    save(args.out, "runtime_tiling", {"rows": rows},
         "Tiled inference vs a full-size reference",
         f"128x256 FP32 artifacts (ONNX Runtime) on {n} synthetic {FRAME[0]}x{FRAME[1]} frames "
         "(4x the input area). *full*: the same trained network in PyTorch on the whole frame "
         "at once (the reference); *resized*: the frame resized to the input and the labels "
         "back (`predict`); *tiled-o*: `predict(tile=True, overlap=o)`. Agreement = share of "
         "pixels with the reference's class.",
         ["model", *(f"{k} agree" for k in names[1:]), *(f"{k} mIoU" for k in names)],
         [[r["model"], *(f"{100 * r['agreement_with_full'][k]:.2f}%" for k in names[1:]),
           *(f"{r['miou'][k]:.3f}" for k in names)] for r in rows])

if __name__ == "__main__":
    main()
