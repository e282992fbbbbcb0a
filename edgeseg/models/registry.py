"""The one model registry: `register_model`, `create_model`, `list_models`.

Builders are keyword-only and typed; a duplicate name is an error at import time, an unknown
name or option is an error that lists what is known.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgeseg.core.errors import UsageError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    summary: str
    #: Named option sets worth listing (e.g. other backbones); the first is the default.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options(self) -> dict[str, inspect.Parameter]:
        """The builder's keyword options (everything but num_classes)."""
        params = inspect.signature(self.builder).parameters
        return {k: p for k, p in params.items() if k != "num_classes"}




class UnknownModel(UsageError, KeyError):
    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0])


class UnknownOption(UsageError, TypeError):
    pass

_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, *, summary: str, variants: dict[str, dict[str, Any]] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a keyword-only builder `fn(*, num_classes, **opts)` under `name`."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise UsageError(
                f"model name {name!r} is already registered by "
                f"{_REGISTRY[name].builder.__module__}.{_REGISTRY[name].builder.__qualname__}"
            )
        params = inspect.signature(fn).parameters.values()
        positional = [p.name for p in params if p.kind not in (p.KEYWORD_ONLY, p.VAR_KEYWORD)]
        if positional:
            raise TypeError(f"builder for {name!r} must be keyword-only; positional: {positional}")
        if "num_classes" not in inspect.signature(fn).parameters:
            raise TypeError(f"builder for {name!r} must take num_classes")
        _REGISTRY[name] = ModelEntry(name, fn, summary, dict(variants or {}))
        return fn

    return wrap


def list_models() -> list[str]:
    """Sorted names of every registered model."""
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise UnknownModel(f"unknown model {name!r}; known models: "
                           f"{', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, *, num_classes: int, **opts: Any) -> nn.Module:
    """Build model `name` with `num_classes` outputs; `opts` are the builder's keyword options."""
    entry = get_entry(name)
    known = entry.options()
    unknown = sorted(set(opts) - set(known))
    if unknown:
        listing = ", ".join(f"{k}={p.default!r}" for k, p in known.items()) or "none"
        raise UnknownOption(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; its options: {listing}"
        )
    return entry.builder(num_classes=num_classes, **opts)


def check_choice(model: str, option: str, value: Any, choices: tuple) -> None:
    """Raise a ValueError naming the option and its valid values when `value` is not one."""
    if value not in choices:
        raise UsageError(
            f"{model}: {option}={value!r} is not supported; choose one of "
            f"{', '.join(repr(c) for c in choices)}"
        )
