"""Published state dicts rebuilt from the fixtures (their key names and shapes): random
values of those shapes, BatchNorm counters as scalars."""

from __future__ import annotations

import json
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_state(name: str, seed: int = 0, section: str = "tensors",
                  counter: int = 7) -> dict[str, torch.Tensor]:
    shapes = json.loads((FIXTURES / f"{name}.json").read_text())[section]
    g = torch.Generator().manual_seed(seed)
    return {k: torch.tensor(counter) if not s or k.endswith("num_batches_tracked")
            else torch.randn(s, generator=g) for k, s in shapes.items()}
