"""data/io.py: output directories that appear whole, whose partial copies a killed writer
leaves behind are removed by the next writer in that folder (never a live writer's), and
image files found in folder trees with their relative paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgeseg.core.errors import InputError
from edgeseg.data import io
from edgeseg.data.io import atomic_output_dir, find_images, remove_stale_partials

ROOT = Path(__file__).resolve().parents[2]


def partials(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".partial"))


def writer(out: Path, then: str) -> subprocess.Popen:
    """Another process inside atomic_output_dir(out): it writes a file, prints its partial
    directory, then runs `then` (kill itself, or wait to be killed)."""
    code = textwrap.dedent(f"""
        import os, signal, time
        from edgeseg.data.io import atomic_output_dir
        with atomic_output_dir({str(out)!r}) as tmp:
            (tmp / "half.bin").write_bytes(b"half")
            print(tmp, flush=True)
            {then}
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_killed_writers_partial_is_removed_by_the_next_writer(tmp_path):
    proc = writer(tmp_path / "export", "os.kill(os.getpid(), signal.SIGKILL)")
    left = Path(proc.stdout.readline().strip())
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert partials(tmp_path) == [left] and (left / "half.bin").is_file()
    with atomic_output_dir(tmp_path / "other") as tmp:
        (tmp / "done.txt").write_text("ok")
    assert not left.exists() and partials(tmp_path) == []
    assert (tmp_path / "other" / "done.txt").read_text() == "ok"


def test_a_live_writers_partial_is_kept(tmp_path):
    proc = writer(tmp_path / "export", "time.sleep(120)")
    try:
        live = Path(proc.stdout.readline().strip())
        with atomic_output_dir(tmp_path / "b"), atomic_output_dir(tmp_path / "c") as mine:
            # the other process's and this process's own (b's) partials both stay
            assert live.is_dir() and len(partials(tmp_path)) == 3 and mine.is_dir()
        assert live.is_dir()
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert remove_stale_partials(tmp_path) == [live]


def test_only_partials_this_host_can_judge_are_removed(tmp_path):
    pid, host = os.getpid(), io._host_tag()
    start = io._start_time(pid)
    reused = tmp_path / f".out.abc123.{host}-{pid}-{start + 1}.partial"  # our PID, reused
    ours = tmp_path / f".out.abc124.{host}-{pid}-{start}.partial"
    elsewhere = tmp_path / f".out.abc125.{'0' * 8 if host != '0' * 8 else '1' * 8}-{pid}-1" \
                           ".partial"
    unowned = tmp_path / ".out.abc126.partial"  # an older edgeseg's: no owner recorded
    for d in (reused, ours, elsewhere, unowned):
        d.mkdir()
    removed = remove_stale_partials(tmp_path)
    assert removed == ([reused] if start else [])  # without /proc the start is unknown
    assert ours.is_dir() and elsewhere.is_dir() and unowned.is_dir()


def cityscapes_tree(root: Path) -> Path:
    val = root / "leftImg8bit" / "val"
    for city, n in (("frankfurt", 2), ("lindau", 1)):
        (val / city).mkdir(parents=True)
        for i in range(n):
            (val / city / f"{city}_{i:06d}_000019_leftImg8bit.png").write_bytes(b"png")
    (val / "lindau" / "notes.txt").write_text("not an image")
    (val / ".cache").mkdir()
    (val / ".cache" / "x.png").write_bytes(b"hidden")
    return val


def test_find_images_walks_subfolders_and_keeps_relative_paths(tmp_path):
    val = cityscapes_tree(tmp_path)
    (val / "out").mkdir()
    (val / "out" / "frankfurt_000000_000019_leftImg8bit.png").write_bytes(b"an old output")
    single = tmp_path / "single.JPG"
    single.write_bytes(b"jpg")
    found = find_images([str(val), str(single)], exclude=val / "out")
    assert [(str(im.relative_to(tmp_path)), str(rel)) for im, rel in found] == [
        ("leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png",
         "frankfurt/frankfurt_000000_000019_leftImg8bit"),
        ("leftImg8bit/val/frankfurt/frankfurt_000001_000019_leftImg8bit.png",
         "frankfurt/frankfurt_000001_000019_leftImg8bit"),
        ("leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png",
         "lindau/lindau_000000_000019_leftImg8bit"),
        ("single.JPG", "single")]
    assert len(find_images([str(val)])) == 4  # without exclude the old output is an input


@pytest.mark.parametrize("setup, pattern", [
    (lambda d: [d / "nope"], r"nope: no such image file or directory"),
    (lambda d: [d], r"no images \(.png"),
    (lambda d: [(d / "a.png").write_bytes(b"1") and d / "a.png",
                (d / "a.jpg").write_bytes(b"2") and d], r"a.png and .*a.jpg would both be "
                                                        r"written as a.png"),
], ids=["missing", "empty", "same output"])
def test_find_images_refusals_name_the_fix(tmp_path, setup, pattern):
    with pytest.raises(InputError, match=pattern):
        find_images([str(p) for p in setup(tmp_path)])
