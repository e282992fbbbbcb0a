"""Small file helpers: label PNGs with a palette, output directories that appear whole or
not at all, and image files found under folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from edgeseg.core.errors import InputError, OutputExists

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def find_images(paths: Sequence[str | Path], *, exclude: Path | None = None
                ) -> list[tuple[Path, Path]]:
    """(image file, its path relative to the folder it was found under, without suffix) for
    image files named in `paths` or anywhere below named folders, so outputs can mirror a
    tree such as Cityscapes' leftImg8bit/val/<city>/*.png. A named file's relative path is
    its stem. Hidden files and folders, and `exclude` (the output folder, which may lie
    inside an input folder), are skipped; symlinked folders are not followed (no loops).
    Two images that would share an output (a.png and a.jpg side by side, or the same
    relative path under two named folders) are an InputError."""
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[Path, Path]] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                here = Path(root)
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and (skip is None or (here / d).resolve() != skip))
                found += [(here / f, (here / f).relative_to(p).with_suffix(""))
                          for f in sorted(files)
                          if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES]
        elif p.is_file():
            found.append((p, Path(p.stem)))
        else:
            raise InputError(f"{p}: no such image file or directory")
    if not found:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, paths))}")
    unique: dict[Path, Path] = {}
    for image, rel in found:
        if unique.setdefault(rel, image) != image:
            raise InputError(f"{unique[rel]} and {image} would both be written as {rel}.png; "
                             "segment them into different output folders")
    return list(dict.fromkeys(found))


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


# A partial directory's name records its writer: ".<out>.<random>.<host>-<pid>-<start>.partial"
# (host: a hash of the host name and PID namespace; start: the process's start time, so a
# reused PID is told apart). In the name rather than in a file inside, so the record exists
# from the instant the directory does and nothing has to be removed before the rename.
_PARTIAL = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)\.partial$")


def _host_tag() -> str:
    """Who can judge whether a PID is alive: this host name and PID namespace. A writer on
    another machine (a shared disk) or in another container has another tag."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha1(f"{socket.gethostname()}|{namespace}".encode()).hexdigest()[:8]


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (Linux); 0 where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name may hold spaces
    except (OSError, ValueError, IndexError):
        return 0


def _alive(pid: int, start: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows: keep everything
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return not (start and _start_time(pid) not in (0, start))  # else a reused PID


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove the partial output directories in `parent` whose writer (on this host) has
    died, killed before it could clean up; a live writer's are never touched. Returns what
    was removed."""
    removed = []
    host = _host_tag()
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for d in entries:
        m = _PARTIAL.match(d.name)
        if m is None or m["host"] != host or not d.is_dir() or d.is_symlink():
            continue
        if not _alive(int(m["pid"]), int(m["start"])):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


@contextlib.contextmanager
def atomic_output_dir(out: Path, *, overwrite: bool = False,
                      flag: str = "--overwrite") -> Iterator[Path]:
    """Yield a temporary sibling of `out` to fill; it becomes `out` only when the block ends
    without an error, so an interrupted run leaves no half-written output and never damages
    an existing one. An existing non-empty `out` is refused unless `overwrite`. A process
    killed mid-write cannot clean up: the next call in the same folder removes its partial
    directory (see remove_stale_partials)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise OutputExists(f"{out} already exists and is not empty; choose another path or "
                           f"pass {flag} to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out.parent)
    pid = os.getpid()
    owner = f"{_host_tag()}-{pid}-{_start_time(pid)}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=f".{owner}.partial",
                                dir=out.parent))
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
