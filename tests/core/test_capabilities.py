"""The capability tables: names resolve from one place, and what reads them agrees."""

from __future__ import annotations

import pytest

from edgeseg.core import capabilities as caps
from edgeseg.core.devices import Device, parse_device
from edgeseg.core.errors import EXIT_CODES, EdgesegError, UsageError


@pytest.mark.parametrize("name", sorted(caps.ALIASES))
def test_every_alias_resolves_in_any_case(name):
    assert caps.engine(name.upper()).name == caps.ALIASES[name]


def test_unknown_names_list_the_choices():
    with pytest.raises(UsageError, match="unknown engine 'coreml'; choose one of tensorrt"):
        caps.engine("coreml")


def test_tables_are_consistent():
    assert caps.AUTO_ORDER == tuple(n for n, e in caps.ENGINES.items() if e.runtime)
    assert all(caps.ENGINES[n].cpu for n in caps.CPU_ENGINES)
    for t in caps.TARGETS.values():
        assert t.judged_in in caps.ENGINES and t.mode in ("kernels", "reference")
        assert t.placement in ("compute-inputs", "integer-kernels")
    for f in caps.FORMATS.values():
        assert f.engine is None or f.engine in caps.ENGINES


@pytest.mark.parametrize("text, want", [("cpu", Device("cpu")), ("CUDA:1", Device("gpu", 1)),
                                        ("GPU.2", Device("gpu", 2)), ("3", Device("gpu", 3)),
                                        ("gpu", Device("gpu")), ("npu", Device("npu"))])
def test_one_device_grammar(text, want):
    assert parse_device(text) == want


@pytest.mark.parametrize("text", ["tpu", "gpu:x", ""])
def test_bad_devices_say_how_to_write_one(text):
    with pytest.raises(UsageError, match="write cpu, gpu, gpu:N"):
        parse_device(text)
    with pytest.raises(UsageError, match="one CPU device; write cpu"):
        parse_device("cpu:1")


def test_every_error_class_has_a_documented_exit_code():
    from edgeseg.core import errors

    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, EdgesegError)]
    assert len(classes) >= 7
    for c in classes:
        assert c.exit_code in EXIT_CODES, c


def test_an_impossible_size_is_refused_where_it_is_parsed():
    from edgeseg.core.text import parse_size

    assert parse_size("512x1024") == (512, 1024)
    with pytest.raises(UsageError, match="100000x100000: a 1x3x100000x100000 tensor"):
        parse_size("100000x100000")


def test_engines_are_named_by_the_tables_not_by_every_module():
    """Outside its own backend folder, the tables (core/capabilities.py) and the op-support
    lint (core/lint.py), no module names the OpenVINO engine: choices, defaults and messages
    come from the tables (issue 17 asked for at most 3 files)."""
    from pathlib import Path

    import edgeseg

    root = Path(edgeseg.__file__).parent
    naming = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                    if "openvino" in p.read_text()
                    and not p.is_relative_to(root / "backends" / "openvino"))
    assert naming == ["core/capabilities.py", "core/lint.py"]
