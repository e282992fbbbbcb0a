"""One row per registered model variant: parameters, MACs, and the published reference."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from edgeseg.models.complexity import measure
from edgeseg.models.references import REFERENCES, Figure, scaled_gmacs
from edgeseg.models.registry import create_model, get_entry, list_models


def _ratio(ours: float, ref: float) -> float:
    return round(ours / ref - 1.0, 4)


def _reference_row(fig: Figure | None, ours: float, size=None) -> dict[str, Any] | None:
    if fig is None:
        return None
    value = scaled_gmacs(fig, size) if size is not None else fig.value
    row = {
        "value": round(value, 3),
        "published": fig.value,
        "published_size": list(fig.size) if fig.size else None,
        "num_classes": fig.num_classes,
        "source": fig.source,
        "comparable": fig.comparable,
        "delta": _ratio(ours, value),
    }
    if fig.note:
        row["note"] = fig.note
    return row


def _gmacs_row(fig: Figure | None, model, ours: float, size) -> dict[str, Any] | None:
    """A MAC figure against ours: rescaled to `size`, or (not linear in the pixel count) ours
    measured at the figure's own size."""
    if fig is None or fig.linear:
        return _reference_row(fig, ours, size)
    row = _reference_row(fig, measure(model, fig.size).gmacs)
    row["note"] = (row.get("note", "") + " compared at its own size: attention grows with "
                   "the square of the tokens").strip()
    return row


def iter_variants(names: list[str] | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in names or list_models():
        for variant, opts in get_entry(name).variants.items():
            yield name, variant, opts


def describe(
    size: tuple[int, int] = (512, 1024),
    num_classes: int = 19,
    names: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every variant of `names` (all models by default) at `size`, on the meta device.

    Parameter references with another class count are compared against our model built
    with that count, so the classifier width is never the difference.
    """
    rows = []
    for name, variant, opts in iter_variants(names):
        if progress:
            progress(f"{name}[{variant}]")
        with torch.device("meta"):
            model = create_model(name, num_classes=num_classes, **opts)
        c = measure(model, size)
        ref = REFERENCES.get((name, variant))
        params_ref = None
        if ref and ref.params_m:
            ours = c.params
            if ref.params_m.num_classes != num_classes:
                with torch.device("meta"):
                    other = create_model(name, num_classes=ref.params_m.num_classes, **opts)
                ours = measure(other, size).params
            params_ref = _reference_row(ref.params_m, ours / 1e6)
        rows.append({
            "name": name,
            "variant": variant,
            "options": opts,
            "summary": get_entry(name).summary,
            "params_m": round(c.params / 1e6, 3),
            "params_train_m": round(c.params_train / 1e6, 3),
            "gmacs": round(c.gmacs, 3),
            "gflops": round(c.gflops, 3),
            "reference": {
                "params_m": params_ref,
                "gmacs": _gmacs_row(ref.gmacs, model, c.gmacs, size) if ref else None,
            },
        })
    return rows
