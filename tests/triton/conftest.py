"""Artifacts for the Triton tests: the runtime tests' dynamic-batch registry export (ONNX and
OpenVINO IR; `logits_artifact`) and fixed-batch imported graph (`local_artifact`)."""

from tests.runtime.conftest import classes, local_artifact, logits_artifact  # noqa: F401
