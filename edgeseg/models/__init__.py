"""The model zoo: one registry, the real-time segmentation families, shared layers."""

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
