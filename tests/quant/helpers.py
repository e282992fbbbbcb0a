"""What the INT8 test files share: one quantize call with the test's defaults."""

from __future__ import annotations

from edgeseg.quant.config import QuantConfig
from edgeseg.quant.int8 import quantize


def run(fp32_artifact, calib_set, out, **kw):
    cfg = QuantConfig(artifact=str(fp32_artifact), calib=str(calib_set.root), out=str(out), **kw)
    return quantize(cfg, log=lambda m: None, progress=False)
