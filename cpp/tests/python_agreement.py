"""Bit-for-bit agreement of the C++ runtime with the Python one (edgeseg.runtime).

Part 1 runs the C++ preprocessing functions (preprocess_tool) on random arrays of many odd
sizes and compares them with edgeseg/core/preprocess.py: the numpy definitions and, for
the resizes, the Pillow path the Python actually takes when Pillow is installed.
Part 2 segments PNG images with edgeseg-segment and compares the palette PNG's indices with
Segmenter(artifact, backend="openvino").predict(image), and the size the image ran at with
Segmenter.run_size, and prints the agreement table. Its artifacts always include two
dynamic-size ones exported here (logits from float32 NCHW, labels from fused uint8 NHWC),
run on images inside their size range, larger than its max, smaller than its min and of
aspect ratios it cannot hold.

    .venv/bin/python cpp/tests/python_agreement.py --build build/cpp \
        [--artifacts DIR ...] [--image grace_hopper.jpg] [--quick]

Exit status 0 only when every comparison is identical.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from edgeseg.core import preprocess as P
from edgeseg.core.shapes import fit_size
from edgeseg.runtime import Segmenter

MATRIX = Path.home() / ".cache/edgeseg/matrix"
DEFAULT_ARTIFACTS = ["bisenetv1-128x256-fp32", "icnet-128x256-int8-openvino",
                     "bisenetv2-128x256-int8-onnxruntime", "segnet-128x256-fp32",
                     "deeplabv3plus-128x256-fp16"]
SIZES = [(97, 131), (131, 97), (333, 517), (517, 333), (600, 450), (64, 64), (1080, 1920)]
# The dynamic-size artifacts: nominal 128x256, any size from 96x160 to 256x512. Images inside
# the range (and no multiple of 32), larger than the max, smaller than the min, one the
# range cannot hold (clamped); the full run adds both ends, a Full HD frame and odd sizes.
DYNAMIC_RANGE = ((96, 160), (256, 512))
DYNAMIC_SIZES = [(131, 197), (600, 450), (64, 64), (40, 1000)]
DYNAMIC_SIZES_FULL = [*DYNAMIC_SIZES, (96, 160), (256, 512), (97, 131), (1080, 1920), (2000, 20)]
# fit_size cases with exact halves and a product that rounds below its half (45 * 0.7)
FIT_FIXED = [(5, 2, (1, 1), (100, 1)), (1000, 333, (1, 1), (500, 1000)),
             (10, 45, (1, 1), (7, 100000)), (1, 5000, (96, 160), (256, 512))]


def tool(build: Path, *args) -> str:
    out = subprocess.run([str(build / "tests/preprocess_tool"), *map(str, args)],
                         check=True, capture_output=True, text=True)
    return out.stdout


def primitives(build: Path, tmp: Path, rng: np.random.Generator, cases: int) -> list[str]:
    """Each failure as a line; the counts go to stdout."""
    bad: list[str] = []
    src, dst = tmp / "in.raw", tmp / "out.raw"
    n = {"bilinear": 0, "nearest": 0, "scores": 0, "argmax": 0, "normalize": 0, "geometry": 0,
         "fit": 0}
    fits = []  # (h, w, (min_h, min_w), (max_h, max_w))
    # Extremes first: single pixels, strong shrinking (wide filters), strong enlarging.
    fixed = [(1, 1, 7, 300), (1, 3000, 5, 2), (2000, 3000, 128, 256), (3, 1, 1080, 1920),
             (1080, 1920, 512, 1024), (512, 1024, 1080, 1920), (7, 5, 7, 5)]
    for case in range(cases + len(fixed)):
        if case < len(fixed):
            h, w, oh, ow = fixed[case]
        else:
            h, w = (int(v) for v in rng.integers(1, 300, 2))
            oh, ow = (int(v) for v in rng.integers(1, 300, 2))
            if rng.random() < 0.2:
                oh = h  # one axis unchanged: only the other pass runs
        channels = 3 if rng.random() < 0.8 else 1
        img = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        img.tofile(src)
        tool(build, "bilinear", src, h, w, channels, oh, ow, dst)
        got = np.fromfile(dst, np.uint8).reshape(oh, ow, channels)
        want = P.resize_bilinear_numpy(img, (oh, ow))
        pil = P.resize_array(img if channels == 3 else img[..., 0], (oh, ow), nearest=False)
        if not (np.array_equal(got, want) and np.array_equal(got.reshape(pil.shape), pil)):
            bad.append(f"bilinear {h}x{w}x{channels} -> {oh}x{ow}")
        n["bilinear"] += 1

        lab = rng.integers(0, 19, (h, w), dtype=np.uint8)
        lab.tofile(src)
        tool(build, "nearest", src, h, w, oh, ow, dst)
        got = np.fromfile(dst, np.uint8).reshape(oh, ow)
        if not (np.array_equal(got, P.resize_nearest_numpy(lab, (oh, ow)))
                and np.array_equal(got, P.resize_array(lab, (oh, ow), nearest=True))):
            bad.append(f"nearest {h}x{w} -> {oh}x{ow}")
        n["nearest"] += 1

        c = int(rng.integers(1, 20))
        sh, sw = max(1, h // 3), max(1, w // 3)
        scores = (rng.standard_normal((c, sh, sw)) * 4).astype(np.float32)
        scores.tofile(src)
        tool(build, "scores", src, c, sh, sw, oh, ow, dst)
        got = np.fromfile(dst, np.float32).reshape(c, oh, ow)
        want = P.resize_scores(scores, (oh, ow))
        if not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
            bad.append(f"scores {c}x{sh}x{sw} -> {oh}x{ow}")
        n["scores"] += 1
        tool(build, "argmax", src, c, sh, sw, oh, ow, dst)
        got = np.fromfile(dst, np.uint8).reshape(oh, ow)
        if not np.array_equal(got, want.argmax(0).astype(np.uint8)):
            bad.append(f"argmax {c}x{sh}x{sw} -> {oh}x{ow}")
        n["argmax"] += 1

        for bgr in (0, 1):
            rgb = rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
            rgb.tofile(src)
            tool(build, "normalize", src, sh, sw, bgr, dst)
            got = np.fromfile(dst, np.float32).reshape(3, sh, sw)
            want = P.Preprocess(size=(sh, sw), color="BGR" if bgr else "RGB").normalize(rgb)
            if not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
                bad.append(f"normalize {sh}x{sw} bgr={bgr}")
            n["normalize"] += 1

        th, tw = (int(v) for v in rng.integers(1, 1100, 2))
        g = [int(v) for v in tool(build, "geometry", h, w, th, tw).split()]
        (rh, rw), (top, left) = P.Preprocess(size=(th, tw), resize="letterbox").geometry(h, w)
        if g != [rh, rw, top, left]:
            bad.append(f"geometry {h}x{w} in {th}x{tw}: {g} vs {[rh, rw, top, left]}")
        n["geometry"] += 1

        lo = tuple(int(v) for v in rng.integers(1, 600, 2))
        hi = tuple(a + int(v) for a, v in zip(lo, rng.integers(0, 1000, 2)))
        fits.append((*(int(v) for v in rng.integers(1, 4000, 2)), lo, hi))
    for h, w, lo, hi in [*fits, *FIT_FIXED]:  # the run size of a dynamic-size graph
        got = tuple(int(v) for v in tool(build, "fit", h, w, *lo, *hi).split())
        if got != fit_size(h, w, lo, hi):
            bad.append(f"fit {h}x{w} in {lo}..{hi}: {got} vs {fit_size(h, w, lo, hi)}")
        n["fit"] += 1
    # Exact halves for the letterbox rounding (Python's round: half to even).
    for h, w, th, tw in [(5, 4, 4, 2), (7, 4, 4, 2), (3, 2, 5, 5), (1000, 1, 10, 10)]:
        g = [int(v) for v in tool(build, "geometry", h, w, th, tw).split()]
        (rh, rw), (top, left) = P.Preprocess(size=(th, tw), resize="letterbox").geometry(h, w)
        if g != [rh, rw, top, left]:
            bad.append(f"geometry {h}x{w} in {th}x{tw}: {g} vs {[rh, rw, top, left]}")
        n["geometry"] += 1
    print("preprocessing primitives, C++ vs Python: " +
          ", ".join(f"{k} {v} cases" for k, v in n.items()) +
          f": {'all identical' if not bad else f'{len(bad)} differ'}")
    return bad


def dynamic_artifacts(tmp: Path) -> list[Path]:
    """The dynamic-size artifacts: segformer with random weights (they still label a photo
    with a dozen classes, where most models' give one or two), exported unsimplified (faster;
    the runtimes only run the graph) with logits, and with labels from fused uint8 frames."""
    from edgeseg.export.exporter import ExportConfig, export

    out = []
    for output, fused in (("logits", False), ("labels", True)):
        path = tmp / f"segformer-dynamic-size-{output}"
        export(ExportConfig(out=str(path), model="segformer", size=(128, 256), output=output,
                            fuse_preprocess=fused, dynamic="size", size_range=DYNAMIC_RANGE,
                            formats=("onnx", "openvino"), simplify=False, parity_inputs=1,
                            parity_backends=("openvino",)), log=lambda _: None)
        out.append(path)
    return out


def make_images(source: Path, tmp: Path, sizes) -> list[Path]:
    """PNG images of exactly HxW: the largest centred crop of that aspect, resized."""
    im = Image.open(source).convert("RGB")
    out = []
    for h, w in sizes:
        scale = min(im.width / w, im.height / h)
        cw, ch = w * scale, h * scale
        box = ((im.width - cw) / 2, (im.height - ch) / 2, (im.width + cw) / 2,
               (im.height + ch) / 2)
        path = tmp / f"img-{h}x{w}.png"
        im.resize((w, h), Image.LANCZOS, box=box).save(path)
        out.append(path)
    return out


def end_to_end(build: Path, tmp: Path, artifacts: list[Path], images: list[Path]) -> list[str]:
    bad = []
    rows = []
    for art in artifacts:
        seg = Segmenter(art, backend="openvino")
        for img in images:
            out, ov = tmp / "labels.png", tmp / "overlay.png"
            run = subprocess.run([str(build / "examples/edgeseg-segment"), str(art), str(img),
                                  str(out), "--overlay", str(ov), "--alpha", "0.3"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                bad.append(f"{art.name} {img.name}: edgeseg-segment failed: {run.stderr}")
                continue
            with Image.open(out) as lab:
                mode = lab.mode
                got = np.asarray(lab)
            rgb = np.asarray(Image.open(img).convert("RGB"))
            want = seg.predict(rgb)
            same = int((got == want).sum()) if got.shape == want.shape else 0
            ok = mode == "P" and got.shape == want.shape and same == want.size
            ov_ok = np.array_equal(np.asarray(Image.open(ov)), seg.overlay(rgb, want, 0.3))
            # edgeseg-segment reports the size the image ran at as "input HxW"
            ran = re.search(r"input (\d+)x(\d+)", run.stderr)
            run_hw = (int(ran[1]), int(ran[2])) if ran else None
            size_ok = run_hw == seg.run_size(rgb.shape[:2])
            rows.append((art.name, img.stem.removeprefix("img-"),
                         "x".join(map(str, run_hw or ("?",))), same, want.size,
                         ok and ov_ok and size_ok))
            if not ok:
                bad.append(f"{art.name} {img.name}: {same}/{want.size} pixels equal (mode {mode})")
            if not ov_ok:
                bad.append(f"{art.name} {img.name}: the overlays (alpha 0.3) differ")
            if not size_ok:
                bad.append(f"{art.name} {img.name}: ran at {run_hw} in C++, "
                           f"{seg.run_size(rgb.shape[:2])} in Python")
        seg.close()
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'artifact':<{width}}  {'image HxW':>10}  {'ran at':>8}  {'equal pixels':>23}  "
          "identical (labels, overlay, run size)")
    for name, size, ran_at, same, total, ok in rows:
        print(f"{name:<{width}}  {size:>10}  {ran_at:>8}  {same:>10} / {total:>10}  "
              f"{'yes' if ok else 'NO'}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=Path("build/cpp"))
    ap.add_argument("--artifacts", nargs="*", type=Path)
    ap.add_argument("--image", type=Path, default=Path(np.__file__).parents[1] /
                    "matplotlib/mpl-data/sample_data/grace_hopper.jpg")
    ap.add_argument("--cases", type=int, default=150, help="random preprocessing cases")
    ap.add_argument("--quick", action="store_true",
                    help="ctest mode: 25 cases; part 2 on $EDGESEG_TEST_ARTIFACT and the "
                         "dynamic-size artifacts, on fewer images")
    args = ap.parse_args()
    artifacts = args.artifacts
    if args.quick:
        args.cases = 25
        env = os.environ.get("EDGESEG_TEST_ARTIFACT")
        artifacts = artifacts or ([Path(env)] if env else [])
    elif artifacts is None:
        artifacts = [MATRIX / a for a in DEFAULT_ARTIFACTS if (MATRIX / a).is_dir()]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bad = primitives(args.build, tmp, np.random.default_rng(0), args.cases)
        if not args.image.is_file():
            print(f"{args.image} not found: no artifacts run (give --image)", file=sys.stderr)
            return 1
        if artifacts:
            sizes = SIZES[:3] if args.quick else SIZES
            bad += end_to_end(args.build, tmp, artifacts, make_images(args.image, tmp, sizes))
        sizes = DYNAMIC_SIZES if args.quick else DYNAMIC_SIZES_FULL
        bad += end_to_end(args.build, tmp, dynamic_artifacts(tmp),
                          make_images(args.image, tmp, sizes))
    for line in bad:
        print("DIFFERS:", line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
