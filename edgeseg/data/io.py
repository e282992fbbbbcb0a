"""Small file helpers: label PNGs with a palette, and output directories that appear whole
or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


def write_label_png(path: Path, labels: np.ndarray,
                    palette: Sequence[Sequence[int]] | None = None) -> None:
    """A mode-P PNG whose pixel values are the class ids (255 = ignore, drawn black)."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="P")
    flat = [0] * (256 * 3)
    for i, c in enumerate(palette or ()):
        flat[3 * i: 3 * i + 3] = list(c)
    im.putpalette(flat)
    im.save(path, optimize=False)


def write_image_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB").save(path)


@contextlib.contextmanager
def atomic_output_dir(out: Path, *, overwrite: bool = False,
                      flag: str = "--overwrite") -> Iterator[Path]:
    """Yield a temporary sibling of `out` to fill; it becomes `out` only when the block ends
    without an error, so an interrupted run leaves no half-written output and never damages
    an existing one. An existing non-empty `out` is refused unless `overwrite`."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty; choose another path or "
                              f"pass {flag} to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should not be
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
