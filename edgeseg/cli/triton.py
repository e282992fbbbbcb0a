"""`edgeseg triton`: write a Triton Inference Server model repository for an artifact."""

from __future__ import annotations

import argparse

from edgeseg.cli.common import positive_int, status
from edgeseg.triton.repository import (
    BACKENDS,
    DEFAULT_MAX_BATCH,
    DEFAULT_QUEUE_DELAY_US,
    GRAPH_ENGINES,
    RepoConfig,
    write,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "triton", help="write a Triton Inference Server model repository for an artifact",
        description="Write REPO with one Triton model per serving path: <model>_<engine> for "
        f"each engine that runs the graph ({', '.join(GRAPH_ENGINES)}; Triton's backend of "
        "the same name; TensorRT from an engine `edgeseg build` made) and <model> (python "
        "backend: the edgeseg Segmenter, uint8 HxWx3 images in, HxW labels out). Each gets "
        "config.pbtxt (names, types and dims "
        "from meta.json; max_batch_size and dynamic batching for a dynamic-batch artifact), "
        "its model file in 1/ and labels.txt. Serve it with `tritonserver "
        "--model-repository REPO`.")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--out", required=True, help="model repository to create")
    p.add_argument("--backend", action="append", choices=BACKENDS, default=None,
                   help="serving path to write (repeatable; default: every one the artifact "
                   "has files for, and python)")
    p.add_argument("--name", default=None, help="model name (default: the artifact's model)")
    p.add_argument("--max-batch", type=positive_int, default=DEFAULT_MAX_BATCH,
                   help="max_batch_size of a dynamic-batch artifact (a TensorRT engine's "
                   "profile caps it)")
    p.add_argument("--no-dynamic-batching", action="store_true",
                   help="leave Triton's dynamic batcher off (requests run as they come)")
    p.add_argument("--queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US,
                   help="how long the dynamic batcher waits to fill a batch (microseconds)")
    p.add_argument("--instances", type=positive_int, default=1,
                   help="model instances per model (instance_group count)")
    p.add_argument("--engine", default=None,
                   help="the TensorRT engine file, when the artifact has several")
    p.add_argument("--segmenter-backend", default="auto",
                   help="engine the python model's Segmenter runs (default: auto)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads of the python model's Segmenter")
    p.add_argument("--force", action="store_true", help="replace an existing repository")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    write(RepoConfig(artifact=args.artifact, out=args.out, backends=tuple(args.backend or ()),
                     name=args.name, max_batch=args.max_batch,
                     dynamic_batching=not args.no_dynamic_batching,
                     queue_delay_us=args.queue_delay_us, instances=args.instances,
                     engine=args.engine, segmenter_backend=args.segmenter_backend,
                     threads=args.threads, force=args.force), log=status)
    return 0
