"""edgeseg: export, quantize, benchmark and embed real-time semantic segmentation models.

Importing the package is cheap: torch and the engines load only when a function needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models"]


def create_model(name: str, *, num_classes: int, **opts):
    """Build a registered segmentation model; see `edgeseg.models.create_model`."""
    from edgeseg.models import create_model as _create

    return _create(name, num_classes=num_classes, **opts)


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    from edgeseg.models import list_models as _list

    return _list()
