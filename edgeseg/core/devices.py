"""One device grammar for every command and engine: `cpu`, `gpu` or `gpu:N` (`cuda`,
`cuda:N` and OpenVINO's `GPU.N` mean the same), `npu`, or a bare GPU index `N`. Each engine's
backend turns a Device into its own runner option (backends/<engine>/)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgeseg.core.errors import UsageError

KINDS = ("cpu", "gpu", "npu")
_FORM = re.compile(r"^(?P<kind>cpu|gpu|cuda|npu)(?:[:.](?P<index>\d+))?$|^(?P<bare>\d+)$")


@dataclass(frozen=True)
class Device:
    kind: str  # cpu | gpu | npu
    index: int | None = None  # None: the engine's default device of that kind

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device(text: str | int | Device | None) -> Device | None:
    if text is None or isinstance(text, Device):
        return text
    m = _FORM.match(str(text).strip().lower())
    if not m:
        raise UsageError(f"device {text!r}: write cpu, gpu, gpu:N (cuda:N), npu, or a GPU "
                         "index N")
    if m["bare"] is not None:
        return Device("gpu", int(m["bare"]))
    kind = "gpu" if m["kind"] == "cuda" else m["kind"]
    if kind == "cpu" and m["index"] not in (None, "0"):
        raise UsageError(f"device {text!r}: there is one CPU device; write cpu")
    return Device(kind, None if m["index"] is None or kind == "cpu" else int(m["index"]))
