"""The artifact directory: `meta.json` plus model files, the contract between every stage,
the Python runtime and the C++ runtime (see ARCHITECTURE.md).

meta.json, schema version 1:

    schema, schema_version, created
    model       {name, options, num_classes, source: registry|checkpoint|import, checkpoint}
    classes     {name, names, palette, ignore_index}
    input       {name, shape (NCHW, or NHWC when fused), dtype, layout, color, mean, std,
                 resize, fused_preprocess, dynamic}
    output      {name, kind: logits|probs|labels|labels_lowres, dtype, shape}
    precision   fp32|fp16|int8
    calibration null until INT8
    accuracy    {reference_miou, miou} when measured
    parity      {thresholds, results: [{backend, inputs, max_abs_diff, argmax_agreement}]}
    export      {opset, exporter, simplifier, ops_before, ops_after}
    files       {name: sha256}
    versions    {package: version} of capabilities.VERSIONED_PACKAGES
    builds      []  (engines built from this artifact: backend, file, device, versions)
    runtime     optional, written by `edgeseg optimize`: {engine, inference_precision (OpenVINO
                f32|bf16|f16, or null), latency_ms, miou, reference_miou, isa, ...}: how the
                artifact measured fastest within its budget here; the Python Segmenter's
                "auto" runs it that way (the C++ runtime does not read it yet)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from pathlib import Path
from typing import Any

from edgeseg.core.capabilities import VERSIONED_PACKAGES
from edgeseg.core.errors import InputError

SCHEMA = "edgeseg-artifact"
SCHEMA_VERSION = 1
REQUIRED = ("model", "classes", "input", "output", "precision", "files", "versions")


class ArtifactError(InputError):
    """An artifact directory that is missing, incomplete or inconsistent."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dist_version(dist: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    return {d: dist_version(d) for d in VERSIONED_PACKAGES}


def new_meta(**sections: Any) -> dict[str, Any]:
    meta = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "calibration": None, "accuracy": {}, "builds": [], "versions": package_versions()}
    meta.update(sections)
    return meta


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Hash every model file listed in meta['files'] and write meta.json."""
    meta["files"] = {name: sha256(directory / name) for name in meta.get("files", {})}
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def read_schema_json(path: Path, *, schema: str, newest: int, error: type[Exception],
                     absent: str, kind: str) -> dict[str, Any]:
    """A versioned JSON document of ours (meta.json, calibration.json): `absent` is the
    message when the file is missing, `kind` what a wrong schema is not."""
    if not path.is_file():
        raise error(absent)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise error(f"{path}: not {kind} (schema {got!r})")
    if not isinstance(doc.get("schema_version", 0), int):
        raise error(f"{path}: schema_version must be an integer")
    if doc.get("schema_version", 0) > newest:
        raise error(f"{path}: schema version {doc['schema_version']} is newer than this "
                    f"edgeseg reads ({newest}); upgrade edgeseg")
    return doc


def read_meta(directory: str | Path, verify: bool = True) -> dict[str, Any]:
    """Read and check an artifact's meta.json; with `verify`, the listed files' hashes too."""
    directory = Path(directory)
    path = directory / "meta.json"
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: artifact directory not found")
    meta = read_schema_json(
        path, schema=SCHEMA, newest=SCHEMA_VERSION, error=ArtifactError,
        kind="an edgeseg artifact",
        absent=f"{directory}: no meta.json; not an edgeseg artifact (make one with `edgeseg "
               "export` or `edgeseg import`)")
    if not isinstance(meta.get("schema_version"), int):
        raise ArtifactError(f"{path}: schema_version must be an integer")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ArtifactError(f"{path}: missing sections {', '.join(missing)}")
    files = meta["files"]
    if not isinstance(files, dict) or any(
            not isinstance(n, str) or Path(n).name != n or n in ("", ".", "..") for n in files):
        raise ArtifactError(f"{path}: 'files' must map plain file names (inside the artifact) "
                            "to sha256 digests")
    if verify:
        for name, digest in files.items():
            f = directory / name
            if not f.is_file():
                raise ArtifactError(f"{directory}: {name} is listed in meta.json but missing")
            if sha256(f) != digest:
                raise ArtifactError(f"{f}: its sha256 differs from meta.json: the file was "
                                    "changed or replaced after export; re-export the artifact")
    return meta
