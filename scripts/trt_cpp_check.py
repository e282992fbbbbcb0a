"""TensorRT conformance of the C++ runtime, without TensorRT or a GPU: every C++ file that
includes TensorRT's headers is compiled (-fsyntax-only, warnings are errors) with
EDGESEG_WITH_TENSORRT=1 against the public headers of each TensorRT release in the sources
folder (10.3.0 = JetPack 6, 10.13.3, 10.16, 11.1), with CUDA's runtime headers from the
nvidia-cuda-runtime / nvidia-cuda-crt wheels. `make test` runs it.

    python scripts/trt_cpp_check.py [--sources DIR]   # exit 1 on any error
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPP = ROOT / "cpp"
USES_TRT = re.compile(r"#\s*include\s*[<\"]Nv(Infer|OnnxParser)|EDGESEG_WITH_TENSORRT")


def sources_dir(given: str | None) -> Path | None:
    """TensorRT's public sources: --sources, $EDGESEG_TRT_SOURCES, the shared folder next to
    the repository, or /work/shared/tensorrt."""
    for candidate in (given, os.environ.get("EDGESEG_TRT_SOURCES"),
                      ROOT.parent / "shared" / "tensorrt", "/work/shared/tensorrt"):
        if candidate and (Path(candidate) / "api_surface.py").is_file():
            return Path(candidate)
    return None


def releases(sources: Path) -> list[Path]:
    def key(p: Path):
        return tuple(int(x) for x in p.name.split("."))
    return sorted((p for p in sources.iterdir() if (p / "include" / "NvInfer.h").is_file()),
                  key=key)


def cuda_include() -> Path | None:
    """CUDA's runtime headers from the nvidia-cuda-runtime wheel (nvidia/cu*/include)."""
    try:
        import nvidia
    except ImportError:
        return None
    for base in nvidia.__path__:
        for inc in sorted(Path(base).glob("*/include"), reverse=True):
            if (inc / "cuda_runtime_api.h").is_file():
                return inc
    return None


def trt_files() -> list[Path]:
    return sorted(p for p in CPP.rglob("*.cpp") if USES_TRT.search(p.read_text()))


def compile_one(file: Path, include: Path, cuda: Path, cxx: str) -> str:
    cmd = [cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
           "-DEDGESEG_WITH_TENSORRT=1", f"-I{CPP / 'include'}", f"-I{CPP / 'src'}",
           "-isystem", str(include), "-isystem", str(cuda), str(file)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return "" if r.returncode == 0 else (r.stderr or r.stdout).strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", default=None, help="TensorRT sources folder (with api_surface.py)")
    args = p.parse_args(argv)
    sources = sources_dir(args.sources)
    if sources is None:
        print("trt-cpp-check: TensorRT's public sources not found (set EDGESEG_TRT_SOURCES "
              "or --sources): nothing checked", file=sys.stderr)
        return 1
    cuda = cuda_include()
    if cuda is None:
        print("trt-cpp-check: CUDA runtime headers not found: pip install nvidia-cuda-runtime "
              "nvidia-cuda-crt (make install does)", file=sys.stderr)
        return 1
    cxx = os.environ.get("CXX") or shutil.which("g++") or "c++"
    files = trt_files()
    if not files:
        print("trt-cpp-check: no C++ file includes TensorRT's headers", file=sys.stderr)
        return 1
    failed = 0
    for release in releases(sources):
        for f in files:
            err = compile_one(f, release / "include", cuda, cxx)
            status = "ok" if not err else "FAILED"
            print(f"trt-cpp-check: TensorRT {release.name}: {f.relative_to(ROOT)}: {status}")
            if err:
                failed += 1
                print(err, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
