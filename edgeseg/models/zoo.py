"""Imports every model module so that each registers itself."""

from edgeseg.models import bisenetv1, bisenetv2, deeplabv3plus, icnet, segnet  # noqa: F401
