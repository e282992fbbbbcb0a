"""The runtime tests' small artifacts, shared with the backend tests."""

from tests.runtime.conftest import (  # noqa: F401
    classes,
    int8_artifacts,
    local_artifact,
    logits_artifact,
)
