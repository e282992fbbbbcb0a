"""`edgeseg segment`: the Python runtime on image files: label maps as palette PNGs (pixel
value = class id, the artifact's palette: the same format the C++ example writes) and, on
request, overlays."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from edgeseg.cli.common import positive_int, status


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "segment", help="segment image files with an artifact (palette PNG label maps)",
        description="Run the Python runtime (edgeseg.runtime.Segmenter) on images: the "
        "artifact's own preprocessing, any image size, the label map back at the image's "
        "size. Writes OUT/<name>.png (mode P: pixel value = class id, the artifact's palette) "
        "and with --overlay OUT/<name>.overlay.png. Existing outputs are kept unless --force.")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("images", nargs="+", help="image files, or directories of them")
    p.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    p.add_argument("--backend", default="auto",
                   help="auto (default: TensorRT, else OpenVINO, else ONNX Runtime), "
                   "openvino or onnxruntime")
    p.add_argument("--device", default=None, help="OpenVINO device (CPU, GPU) or cpu/cuda "
                   "for ONNX Runtime")
    p.add_argument("--overlay", action="store_true", help="also write the image with the "
                   "classes blended over it")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity (default 0.5)")
    p.add_argument("--tile", action="store_true", help="sliding-window inference at the "
                   "image's own resolution instead of resizing it to the network input")
    p.add_argument("--overlap", type=float, default=0.25,
                   help="--tile: share of a window that neighbours overlap (default 0.25)")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--no-verify", action="store_true",
                   help="skip the sha256 check of the artifact's files")
    p.add_argument("--force", action="store_true", help="replace existing output files")
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
    from edgeseg.core.artifact import ArtifactError
    from edgeseg.core.frames import ImageError
    from edgeseg.core.progress import progress_bar
    from edgeseg.data.datasets import DatasetError, read_image
    from edgeseg.data.io import find_images, write_image_png, write_label_png
    from edgeseg.runtime import Segmenter

    if not 0.0 <= args.alpha <= 1.0:
        status(f"error: --alpha must be within [0, 1], got {args.alpha}")
        return 2
    try:
        images = find_images(args.images, exclude=args.out)
        outputs = [(im, args.out / f"{rel}.png", args.out / f"{rel}.overlay.png")
                   for im, rel in images]
        taken = [p for _, lab, ov in outputs for p in ((lab, ov) if args.overlay else (lab,))
                 if p.exists()]
        if taken and not args.force:
            raise FileExistsError(f"{len(taken)} output file(s) exist already (e.g. "
                                  f"{taken[0]}); pass --force to replace them")
        seg = Segmenter(args.artifact, backend=args.backend, device=args.device,
                        threads=args.threads, verify=not args.no_verify)
    except (ArtifactError, FileNotFoundError, FileExistsError, ValueError, RuntimeError,
            ImportError) as e:
        status(f"error: {e}")
        return 1
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
            except (DatasetError, ImageError, ValueError) as e:
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
    return 1 if failed else 0
