"""The host CPU's instruction-set features that decide which kernels an engine runs (INT8 dot
products, bf16, AMX): named with every figure, and recorded where an engine's behaviour on
this CPU changed an artifact (quant/kernels.py)."""

from __future__ import annotations

from pathlib import Path

# The features INT8, bf16 and fp16 speed (and 8-bit weight exactness) depend on, for a
# figure's one-line host description (avx512_fp16: OpenVINO's f16 inference precision).
ISA_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_int8",
                "amx_bf16", "asimddp", "i8mm")


def cpu_flags(root: Path = Path("/")) -> list[str]:
    """The first processor's flags (x86 `flags`, Arm `Features`) from /proc/cpuinfo."""
    try:
        text = (root / "proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return value.split()
    return []


def isa(flags: list[str] | None = None) -> str:
    """'avx2, avx512f, avx512_vnni, ...': which of ISA_FEATURES this CPU has ('none')."""
    have = set(cpu_flags() if flags is None else flags)
    return ", ".join(f for f in ISA_FEATURES if f in have) or "none"
