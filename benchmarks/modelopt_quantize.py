"""NVIDIA Model Optimizer's ONNX PTQ (INT8, its defaults) on one FP32 ONNX: the peer that
benchmarks/int8_vs_modelopt.py compares edgeseg's quantizer with.

Runs in its own virtual environment (`make modelopt-env`: ModelOpt pins onnx and
onnxruntime-gpu versions that differ from edgeseg's), on the CPU:

    .venv-modelopt/bin/python benchmarks/modelopt_quantize.py MODEL.onnx CALIB.npy OUT.onnx \
        [--high-precision fp16|fp32]

CALIB.npy holds the calibration inputs, stacked (N, C, H, W), exactly as edgeseg feeds them.
Every other setting is ModelOpt's default (entropy ranges, its Q/DQ placement, its FP16
cast of what stays in high precision unless --high-precision fp32). Prints one JSON line
with the versions used.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("onnx")
    p.add_argument("calib", help=".npy of stacked calibration inputs (N, C, H, W)")
    p.add_argument("out")
    p.add_argument("--high-precision", choices=("fp16", "fp32"), default="fp16",
                   help="dtype of what is not quantized (ModelOpt's default: fp16)")
    args = p.parse_args()

    import numpy as np
    import onnx
    import onnxruntime
    from modelopt import __version__ as modelopt_version
    from modelopt.onnx.quantization import quantize

    data = np.load(args.calib)
    name = onnx.load(args.onnx, load_external_data=False).graph.input[0].name
    quantize(args.onnx, quantize_mode="int8", calibration_data={name: data},
             calibration_eps=["cpu"], high_precision_dtype=args.high_precision,
             output_path=args.out, log_level="WARNING")
    print(json.dumps({"modelopt": modelopt_version, "onnx": onnx.__version__,
                      "onnxruntime": onnxruntime.__version__,
                      "high_precision_dtype": args.high_precision,
                      "calibration_images": int(data.shape[0])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
