"""`edgeseg segment`: the Python runtime on image files: label maps as palette PNGs (pixel
value = class id, the artifact's palette: the same format the C++ example writes) and, on
request, overlays."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from edgeseg.cli.common import add_device, add_force, add_threads, engine_name, status
from edgeseg.core.capabilities import AUTO_ORDER, ENGINES
from edgeseg.core.errors import EdgesegError, InputError, OutputExists, UsageError
from edgeseg.core.progress import progress_bar
from edgeseg.data.datasets import read_image
from edgeseg.data.io import find_images, write_image_png, write_label_png
from edgeseg.runtime import Segmenter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "segment", help="segment image files with an artifact (palette PNG label maps)",
        description="Run the Python runtime (edgeseg.runtime.Segmenter) on images: the "
        "artifact's own preprocessing, any image size, the label map back at the image's "
        "size. Writes OUT/<path>.png for each image, <path> its path below the folder named "
        "(a Cityscapes leftImg8bit/val tree keeps its city folders; mode P: pixel value = "
        "class id, the artifact's palette) and with --overlay OUT/<path>.overlay.png. Existing "
        "outputs are kept unless --force; images that cannot be read are listed (exit 2).")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("images", nargs="+", help="image files, or directories of them")
    p.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    p.add_argument("--backend", default="auto",
                   type=lambda t: t if t == "auto" else engine_name(t),
                   help="auto (default: " + ", else ".join(ENGINES[n].title for n in AUTO_ORDER)
                   + ", an INT8 graph's own target first) or an engine name or alias")
    add_device(p)
    p.add_argument("--overlay", action="store_true", help="also write the image with the "
                   "classes blended over it")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity (default 0.5)")
    p.add_argument("--tile", action="store_true", help="sliding-window inference at the "
                   "image's own resolution instead of resizing it to the network input")
    p.add_argument("--overlap", type=float, default=0.25,
                   help="--tile: share of a window that neighbours overlap (default 0.25)")
    add_threads(p)
    p.add_argument("--no-verify", action="store_true",
                   help="skip the sha256 check of the artifact's files")
    add_force(p, "output files")
    p.set_defaults(func=run)


def _write_atomic(path: Path, write, *args) -> None:
    """`write(file, *args)` to a temporary sibling renamed over `path` once complete."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}.png")
    try:
        write(tmp, *args)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must be within [0, 1], got {args.alpha}")
    images = find_images(args.images, exclude=args.out)
    outputs = [(im, args.out / f"{rel}.png", args.out / f"{rel}.overlay.png")
               for im, rel in images]
    taken = [p for _, lab, ov in outputs for p in ((lab, ov) if args.overlay else (lab,))
             if p.exists()]
    if taken and not args.force:
        raise OutputExists(f"{len(taken)} output file(s) exist already (e.g. {taken[0]}); "
                           "pass --force to replace them")
    seg = Segmenter(args.artifact, backend=args.backend, device=args.device,
                    threads=args.threads, verify=not args.no_verify)
    status(f"segment: {len(images)} image(s) with {seg.backend} ({seg.backend_reason}), "
           f"input {seg.input_size[0]}x{seg.input_size[1]}"
           + (f", tiled with {args.overlap:.0%} overlap" if args.tile else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    failed, seconds = [], 0.0
    with seg:
        for image_path, label_path, overlay_path in progress_bar(
                outputs, desc="segment", enable=len(outputs) > 1, unit="img"):
            try:
                image = read_image(image_path)
                t0 = time.perf_counter()
                labels = seg.predict(image, tile=args.tile, overlap=args.overlap)
                seconds += time.perf_counter() - t0
            except EdgesegError as e:  # an unreadable image, or one too large: the next one
                failed.append(f"{image_path}: {e}")
                continue
            label_path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(label_path, write_label_png, labels, seg.palette)
            if args.overlay:
                _write_atomic(overlay_path, write_image_png,
                              seg.overlay(image, labels, args.alpha))
    done = len(outputs) - len(failed)
    for f in failed:
        status(f"failed: {f}")
    if done:
        status(f"wrote {done} label map(s){' and overlays' if args.overlay else ''} to "
               f"{args.out} ({1000 * seconds / done:.1f} ms per image, predict only)")
    return InputError.exit_code if failed else 0
