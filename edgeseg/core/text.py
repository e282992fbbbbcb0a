"""Text in and out shared by every layer: sizes written HxW and aligned tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeseg.core.errors import UsageError
from edgeseg.core.memory import check_size


def parse_size(text: str) -> tuple[int, int]:
    """'512x1024' -> (512, 1024); anything else, or a size whose image tensor could never
    exist here (core/memory.py), is a UsageError that says why."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"size must be HxW with two positive integers, e.g. 512x1024; got {text!r}"
        ) from None
    if h <= 0 or w <= 0:
        raise UsageError(f"size must be positive, got {text!r}")
    check_size(h, w, what="size")
    return h, w


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False
) -> str:
    """An aligned text table (numbers right-aligned), or a GitHub Markdown table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    if markdown:
        numeric_md = [all(_is_number(r[i]) for r in cells[1:] if r[i]) for i in range(len(headers))]
        sep = ["---:" if n else "---" for n in numeric_md]
        return "\n".join("| " + " | ".join(r) + " |" for r in [cells[0], sep, *cells[1:]])
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:] if r[i]) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, numeric))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(s.rstrip() for s in out)


def _is_number(s: str) -> bool:
    try:
        float(s.rstrip("%"))
        return True
    except ValueError:
        return False
