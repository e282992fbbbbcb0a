"""The runtime tests' small artifacts, shared with the backend tests."""

from tests.runtime.conftest import classes, int8_artifacts, local_artifact  # noqa: F401
