"""Progress bars for long work (tqdm on stderr; silent when disabled or not a terminal
unless forced)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def progress_bar(it: Iterable[T], *, desc: str, enable: bool = True,
                 total: int | None = None, unit: str = "it") -> Iterable[T]:
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, total=total, unit=unit, disable=not enable, dynamic_ncols=True,
                mininterval=0.5)
