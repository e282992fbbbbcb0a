"""Shared test setup: one torch thread per pytest-xdist worker (two workers on two cores
would otherwise oversubscribe), and a parameter-count summary at the end of the run."""

from __future__ import annotations

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

PARAM_COUNTS_KEY = "edgeseg_param_counts"


@pytest.fixture
def record_params(record_property):
    """Record a model's parameter count; the terminal summary prints every one."""

    def record(label: str, model: torch.nn.Module) -> int:
        n = sum(p.numel() for p in model.parameters())
        record_property(PARAM_COUNTS_KEY, f"{label}: {n / 1e6:.3f} M")
        return n

    return record


def pytest_terminal_summary(terminalreporter):
    lines = sorted({
        value
        for rep in terminalreporter.stats.get("passed", [])
        for key, value in getattr(rep, "user_properties", [])
        if key == PARAM_COUNTS_KEY
    })
    if lines:
        terminalreporter.section("model parameter counts (training graph, as the tests build them)")
        for line in lines:
            terminalreporter.write_line(line)
