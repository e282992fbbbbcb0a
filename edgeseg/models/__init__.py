"""The model zoo: one registry, the real-time segmentation families, shared layers.

The families register themselves on import; importing any part of edgeseg.models runs this
package first, so the registry is complete whichever module a caller names."""

from edgeseg.models import (  # noqa: F401
    bisenetv1,
    bisenetv2,
    ddrnet,
    deeplabv3plus,
    fastscnn,
    icnet,
    pidnet,
    segformer,
    segnet,
    stdc,
)
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
