#!/bin/sh
# ctest wrapper: run python_agreement.py with $EDGESEG_TEST_PYTHON (a Python that imports
# edgeseg, e.g. the repository's .venv/bin/python); exit 77 (skipped) when it is unset.
if [ -z "$EDGESEG_TEST_PYTHON" ]; then
  echo "EDGESEG_TEST_PYTHON is not set: skipped" >&2
  exit 77
fi
exec "$EDGESEG_TEST_PYTHON" "$(dirname "$0")/python_agreement.py" --build "$EDGESEG_BUILD_DIR" --quick
