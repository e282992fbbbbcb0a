"""The pipeline tests use the benchmark tests' small data and artifacts."""

from tests.bench.conftest import exported, imported, synth  # noqa: F401
