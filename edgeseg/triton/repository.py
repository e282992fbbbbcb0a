"""`edgeseg triton ARTIFACT --out REPO`: a Triton Inference Server model repository for an
artifact (https://github.com/triton-inference-server/server, docs/user_guide/model_repository
and model_configuration).

One model per serving path, each `REPO/<name>/config.pbtxt` + `REPO/<name>/1/<model file>` +
`REPO/<name>/labels.txt`:
- `<model>_<engine>` for each engine of the capability tables that runs the graph, with
  Triton's backend of the same name: ONNX Runtime (model.onnx), OpenVINO (its IR, .xml and
  .bin), TensorRT (model.plan: an engine `edgeseg build` made; engines run only on the GPU
  and TensorRT version they were built for, which its build record says);
- `<model>` (backend python): the whole edgeseg Segmenter, HxWx3 uint8 images in, HxW uint8
  labels out, preprocessing and resizing included (model.py beside it, the artifact in 1/).

Names, types and dims come from meta.json. A dynamic-batch artifact gets max_batch_size and
dynamic batching (dims without the batch); a fixed-batch one max_batch_size 0 and full
shapes. The config text is written here, without Triton's packages; the tests parse every
config.pbtxt with protobuf's text format against Triton's own ModelConfig message.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgeseg.core.artifact import read_meta
from edgeseg.core.capabilities import ENGINES, FORMATS
from edgeseg.core.capabilities import engine as engine_of
from edgeseg.core.errors import InputError, UsageError
from edgeseg.data.io import atomic_output_dir

# Triton's backends for a graph carry the names of edgeseg's engines (core/capabilities.py);
# torch rebuilds the module and has no graph to serve.
GRAPH_ENGINES = tuple(e for e, spec in ENGINES.items() if spec.files[0])
BACKENDS = (*GRAPH_ENGINES, "python")
# engines whose model file is built per device (Triton's model.plan), not exported
ENGINE_BUILT = tuple(e for e in GRAPH_ENGINES if "<tag>" in ENGINES[e].files[0])
# meta.json dtypes -> Triton's DataType names
DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8",
          "int8": "TYPE_INT8", "int32": "TYPE_INT32", "int64": "TYPE_INT64"}
MODEL_PY = Path(__file__).with_name("model.py")
DEFAULT_MAX_BATCH = 8
DEFAULT_QUEUE_DELAY_US = 2000


@dataclass(frozen=True)
class RepoConfig:
    artifact: str
    out: str
    backends: tuple[str, ...] = ()  # () = every one the artifact has files for
    name: str | None = None  # model name prefix (default: the artifact's model name)
    max_batch: int = DEFAULT_MAX_BATCH
    dynamic_batching: bool = True
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instances: int = 1
    engine: str | None = None  # the TensorRT engine file when the artifact has several
    segmenter_backend: str = "auto"  # what the python model's Segmenter runs
    threads: int | None = None  # the python model's Segmenter threads
    force: bool = False


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def _dims(shape: list, batched: bool) -> list[int]:
    dims = [d if isinstance(d, int) else -1 for d in shape]
    return dims[1:] if batched else dims


def _batched(meta: dict) -> bool:
    return not isinstance(meta["input"]["shape"][0], int)


def _tensor(name: str, dtype: str, dims: list[int], labels: bool = False) -> str:
    if dtype not in DTYPES:
        raise InputError(f"tensor {name!r} has dtype {dtype}, which Triton's configs do not "
                         f"take here ({', '.join(DTYPES)})")
    extra = ' label_filename: "labels.txt"' if labels else ""
    return (f'  {{ name: "{name}" data_type: {DTYPES[dtype]} '
            f'dims: [ {", ".join(map(str, dims))} ]{extra} }}')


def config_text(name: str, backend: str, inputs: list[str], outputs: list[str], *,
                max_batch: int, cfg: RepoConfig, kind: str, extra: str = "") -> str:
    """config.pbtxt text (protobuf text format of Triton's ModelConfig)."""
    lines = [f'name: "{name}"', f'backend: "{backend}"', f"max_batch_size: {max_batch}"]
    lines += ["input [", ",\n".join(inputs), "]", "output [", ",\n".join(outputs), "]"]
    if max_batch > 0 and cfg.dynamic_batching:
        preferred = sorted({b for b in (max_batch // 2, max_batch) if b > 1})
        lines += ["dynamic_batching {",
                  f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]"
                  if preferred else "",
                  f"  max_queue_delay_microseconds: {cfg.queue_delay_us}", "}"]
    lines += ["instance_group [", f"  {{ count: {cfg.instances} kind: {kind} }}", "]"]
    if extra:
        lines.append(extra)
    return "\n".join(line for line in lines if line) + "\n"


def _graph_config(name: str, backend: str, meta: dict, cfg: RepoConfig, kind: str,
                  engine: dict | None = None) -> str:
    """A graph's own tensors; for a TensorRT engine, max_batch_size within its profile."""
    batched = _batched(meta)
    inp, out = meta["input"], meta["output"]
    max_batch = cfg.max_batch
    profile = (engine or {}).get("profile") or {}
    if inp["name"] in profile:
        max_batch = min(max_batch, profile[inp["name"]][2][0])
    return config_text(
        name, backend, [_tensor(inp["name"], inp["dtype"], _dims(inp["shape"], batched))],
        [_tensor(out["name"], out["dtype"], _dims(out["shape"], batched),
                 labels=out["kind"] != "labels")],
        max_batch=max_batch if batched else 0, cfg=cfg, kind=kind)


def _segmenter_config(name: str, meta: dict, cfg: RepoConfig) -> str:
    params = {"artifact": "artifact", "backend": cfg.segmenter_backend}
    if cfg.threads:
        params["threads"] = str(cfg.threads)
    extra = "\n".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}'
                      for k, v in params.items())
    return config_text(name, "python", ['  { name: "image" data_type: TYPE_UINT8 '
                                        "dims: [ -1, -1, 3 ] }"],
                       ['  { name: "labels" data_type: TYPE_UINT8 dims: [ -1, -1 ] }'],
                       max_batch=cfg.max_batch, cfg=cfg, kind="KIND_CPU", extra=extra)


def _engine(meta: dict, cfg: RepoConfig) -> dict:
    builds = [b for b in meta.get("builds", []) if b.get("backend") in ENGINE_BUILT]
    if cfg.engine:
        builds = [b for b in builds if b["file"] == cfg.engine]
        if not builds:
            raise UsageError(f"--engine {cfg.engine}: the artifact has no such TensorRT "
                             "engine (see meta.json builds)")
    if not builds:
        raise InputError("--backend tensorrt: the artifact has no TensorRT engine; build one "
                         "on the serving GPU with `edgeseg build ARTIFACT --backend tensorrt` "
                         "(engines run only on the GPU and TensorRT version they were built "
                         "for), then write the repository")
    if len(builds) > 1:
        raise UsageError("the artifact has several TensorRT engines ("
                         + ", ".join(b["file"] for b in builds) + "); pick one with --engine")
    return builds[0]


def graph_files(meta: dict, engine: str) -> list[str]:
    """The artifact files engine `engine` serves (its first file in the tables, with the
    companions of its format), [] when the artifact has none; TensorRT's come from builds."""
    first = ENGINES[engine].files[0]
    if "<tag>" in first:
        return [b["file"] for b in meta.get("builds", []) if b.get("backend") == engine]
    if first not in meta["files"]:
        return []
    fmt = next((f for f in FORMATS.values() if first in f.files), None)
    return list(fmt.files) if fmt else [first]


def available(meta: dict) -> list[str]:
    """The serving paths this artifact has files for."""
    return [e for e in GRAPH_ENGINES if graph_files(meta, e)] + ["python"]


def write(cfg: RepoConfig, *, log=print) -> dict[str, Path]:
    """Write the repository at cfg.out; returns {model name: its directory}. Nothing is
    written when a check fails; an existing repository is replaced only with force."""
    src = Path(cfg.artifact)
    meta = read_meta(src)
    if cfg.max_batch < 1:
        raise UsageError(f"--max-batch {cfg.max_batch}: at least 1")
    if cfg.instances < 1:
        raise UsageError(f"--instances {cfg.instances}: at least 1")
    if cfg.queue_delay_us < 0:
        raise UsageError(f"--queue-delay-us {cfg.queue_delay_us}: 0 or more microseconds")
    unknown = [b for b in cfg.backends if b not in BACKENDS]
    if unknown:
        raise UsageError(f"--backend {unknown[0]}: choose from {', '.join(BACKENDS)}")
    if cfg.segmenter_backend != "auto":
        engine_of(cfg.segmenter_backend)  # an unknown name is refused with the choices
    have = available(meta)
    backends = list(dict.fromkeys(cfg.backends)) or have
    built = [b for b in meta.get("builds", []) if b.get("backend") in ENGINE_BUILT]
    if not cfg.backends and len(built) > 1 and not cfg.engine:
        backends = [b for b in backends if b not in ENGINE_BUILT]
        log("the artifact has several TensorRT engines: no TensorRT model written (pick one "
            "with --engine, or --backend tensorrt --engine FILE)")
    missing = [b for b in backends if b not in have and b not in ENGINE_BUILT]
    if missing:
        raise InputError(f"--backend {missing[0]}: the artifact has no file for it (it has "
                         f"{', '.join(meta['files'])}); export with that format first")
    engine = _engine(meta, cfg) if set(backends) & set(ENGINE_BUILT) else None
    base = _slug(cfg.name or meta["model"]["name"])
    labels = "\n".join(meta["classes"]["names"]) + "\n"
    written = {}
    with atomic_output_dir(Path(cfg.out), overwrite=cfg.force, flag="--force") as tmp:
        for backend in backends:
            name = base if backend == "python" else f"{base}_{backend}"
            d = tmp / name
            (d / "1").mkdir(parents=True)
            (d / "labels.txt").write_text(labels)
            kind = "KIND_CPU" if backend == "python" or ENGINES[backend].cpu else "KIND_GPU"
            if backend in ENGINE_BUILT:
                shutil.copyfile(src / engine["file"], d / "1" / "model.plan")
                text = _graph_config(name, backend, meta, cfg, kind, engine)
            elif backend != "python":
                for f in graph_files(meta, backend):
                    shutil.copyfile(src / f, d / "1" / f)
                text = _graph_config(name, backend, meta, cfg, kind)
            else:
                shutil.copytree(src, d / "1" / "artifact")
                shutil.copyfile(MODEL_PY, d / "1" / "model.py")
                text = _segmenter_config(name, meta, cfg)
            (d / "config.pbtxt").write_text(text)
            written[name] = Path(cfg.out) / name
            log(f"{name}: {backend} backend")
    if engine is not None:
        log(f"{base}_tensorrt serves {engine['file']}: built for {engine['device']} "
            f"(sm {engine['compute_capability']}) with TensorRT {engine['tensorrt']}; the "
            "server must have that GPU and TensorRT version")
    if not _batched(meta):
        log("the artifact has a fixed batch: its graph models get max_batch_size 0 (no "
            "dynamic batching); export with `--dynamic batch` to batch requests")
    log(f"wrote {cfg.out}")
    return written
