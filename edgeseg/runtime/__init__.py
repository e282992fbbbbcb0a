"""What an application embeds: `Segmenter` (artifact in, label maps out), the one
preprocessing definition, tiling, and label maps to pictures (colorize, overlay). Only numpy
and the chosen engine are imported."""

from __future__ import annotations

from edgeseg.core.frames import ImageError, Pipeline, as_rgb
from edgeseg.runtime.overlay import colorize, overlay
from edgeseg.runtime.segmenter import Segmenter, choose_backend, frames

__all__ = ["ImageError", "Pipeline", "Segmenter", "as_rgb", "choose_backend", "colorize",
           "frames", "overlay"]
