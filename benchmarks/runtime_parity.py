"""Python and C++ runtimes on the trained artifacts of every family: the same label map for the
same artifact and photograph? Each artifact (FP32, FP16, INT8 for ONNX Runtime and for
OpenVINO; at 128x256 unless --sizes says more) segments odd-sized crops of real photographs
with the C++ example program (OpenVINO) and with the Python Segmenter (OpenVINO, and ONNX
Runtime for comparison). Writes benchmarks/runtime_parity.{json,md}.

    make cpp && python benchmarks/runtime_parity.py [--models ...] [--sizes 128x256 ...]
        [--artifacts DIR ...]

Needs the matrix artifacts (`edgeseg bench --matrix benchmarks/matrix.toml`). Rows of
artifacts not run this time (another model, or not in this machine's cache) are kept from
the previous file; every row names the host that ran it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from _results import save
from PIL import Image

from edgeseg.baseline import DEFAULT_CACHE, cpu_name
from edgeseg.core.host import isa

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "build" / "cpp" / "examples" / "edgeseg-segment"
MODELS = ("bisenetv1", "bisenetv2", "icnet", "deeplabv3plus", "segnet", "fastscnn", "ddrnet",
          "pidnet", "stdc", "segformer")
VARIANTS = ("fp32", "fp16", "int8-onnxruntime", "int8-openvino")


def photographs(directory: Path) -> list[Path]:
    """Odd-sized crops of the real photographs that installed packages ship."""
    import matplotlib

    sources = [Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]
    try:
        import sklearn

        sources += sorted((Path(sklearn.__file__).parent / "datasets" / "images").glob("*.jpg"))
    except ImportError:
        pass
    crops = [(0, 0, 333, 517), (41, 7, 97, 131), (3, 11, 401, 377)]
    out = []
    for src in sources:
        with Image.open(src) as im:
            rgb = np.asarray(im.convert("RGB"))
        for top, left, h, w in crops:
            crop = rgb[top:top + h if h else None, left:left + w if w else None]
            path = directory / f"{src.stem}-{crop.shape[0]}x{crop.shape[1]}.png"
            Image.fromarray(np.ascontiguousarray(crop)).save(path)
            out.append(path)
    return out


def main() -> None:
    from edgeseg.runtime import Segmenter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--sizes", nargs="+", default=["128x256"])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    ap.add_argument("--artifacts", nargs="*", type=Path, default=[],
                    help="more artifact directories named MODEL-HxW-VARIANT (e.g. INT8 "
                    "artifacts quantized outside the matrix)")
    args = ap.parse_args()
    if not PROGRAM.is_file():
        raise SystemExit(f"no {PROGRAM}: build the C++ runtime with `make cpp` first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = photographs(tmp)
        todo = [(m, s, v, args.cache / "matrix" / f"{m}-{s}-{v}")
                for m in args.models for s in args.sizes for v in VARIANTS]
        todo += [(*a.name.split("-", 2), a) for a in args.artifacts]
        for model, size, variant, art in todo:
            if not art.is_dir():
                continue
            same = {"cpp|py-openvino": 0, "cpp|py-onnxruntime": 0}
            identical, pixels = 0, 0
            with Segmenter(art, backend="openvino") as ov, \
                    Segmenter(art, backend="onnxruntime") as ort:
                for image in images:
                    out = tmp / "labels.png"
                    subprocess.run([str(PROGRAM), str(art), str(image), str(out)],
                                   check=True, capture_output=True)
                    with Image.open(out) as im:
                        cpp = np.asarray(im)
                    with Image.open(image) as im:
                        rgb = np.asarray(im.convert("RGB"))
                    py_ov, py_ort = ov.predict(rgb), ort.predict(rgb)
                    same["cpp|py-openvino"] += int((cpp == py_ov).sum())
                    same["cpp|py-onnxruntime"] += int((cpp == py_ort).sum())
                    identical += int(np.array_equal(cpp, py_ov))
                    pixels += cpp.size
            row = {"model": model, "size": size, "variant": variant,
                   "host": f"{cpu_name()} ({isa()})",
                   "images": len(images), "identical_images": identical,
                   **{k: v / pixels for k, v in same.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    names = [p.name for p in images]
    rows = _merge(args.out / "runtime_parity.json", rows)
    save(args.out, "runtime_parity", {"images": names, "rows": rows},
         "Python and C++ runtimes: same artifact, same photograph, same labels?",
         f"{len(images)} odd-sized crops of real photographs ({', '.join(names)}), each "
         "segmented by the C++ example program `edgeseg-segment` (OpenVINO backend) and by the "
         "Python `Segmenter` with OpenVINO and with ONNX Runtime. Agreement = share of pixels "
         "with the same class; *identical* = images whose label maps are equal byte for byte. "
         "DeepLabv3+/SegNet INT8 rows, when present, come from `--artifacts` quantized with the "
         "agreement gates off (the matrix refuses them on AVX2 hosts).",
         ["model", "input", "artifact", "C++ = Python (OpenVINO)", "identical images",
          "C++ vs Python (ONNX Runtime)", "host"],
         [[r["model"], r["size"], r["variant"], f"{100 * r['cpp|py-openvino']:.3f}%",
           f"{r['identical_images']}/{r['images']}", f"{100 * r['cpp|py-onnxruntime']:.3f}%",
           r["host"]] for r in rows])


def _merge(path: Path, rows: list[dict]) -> list[dict]:
    """This run's rows, plus the previous file's rows for artifacts not run this time (each
    keeps the host it was measured on), in model order."""
    old = json.loads(path.read_text()) if path.is_file() else {"rows": []}
    done = {(r["model"], r["size"], r["variant"]) for r in rows}
    kept = [{**r, "host": r.get("host") or old.get("cpu") or "unknown"} for r in old["rows"]
            if (r["model"], r["size"], r["variant"]) not in done]
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(kept + rows, key=lambda r: (order.get(r["model"], len(order)), r["size"],
                                               VARIANTS.index(r["variant"])
                                               if r["variant"] in VARIANTS else 99))

if __name__ == "__main__":
    main()
