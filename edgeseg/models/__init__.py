"""The model zoo: one registry, the real-time segmentation families, shared layers.

The families register themselves on import; importing any part of edgeseg.models runs this
package first, so the registry is complete whichever module a caller names."""

from edgeseg.models import bisenetv1, bisenetv2, deeplabv3plus, icnet, segnet  # noqa: F401
from edgeseg.models.base import SegmentationModel, TrainOutput
from edgeseg.models.registry import create_model, get_entry, list_models, register_model

__all__ = [
    "SegmentationModel",
    "TrainOutput",
    "create_model",
    "get_entry",
    "list_models",
    "register_model",
]
