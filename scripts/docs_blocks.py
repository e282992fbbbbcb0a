"""The Markdown that scripts/update_readme.py puts into README.md and docs/*.md: table
helpers, the CLI reference (from the argparse parser) and the capability and error tables.
Each public generator takes nothing and returns Markdown; update_readme.BLOCKS names them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------
# Markdown helpers


def cell(value: object) -> str:
    """One table cell: a single line with the column separator escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def code(text: object) -> str:
    return f"`{text}`"


# ---------------------------------------------------------------------------------------
# CLI reference (docs/cli.md), from the argparse parser itself


def _path_default(path: Path) -> str:
    """Machine-independent spelling of a path default (the cache lives under $HOME)."""
    cache = os.environ.get("EDGESEG_CACHE")
    for prefix, shown in ((cache, "~/.cache/edgeseg"), (str(Path.home()), "~")):
        if prefix and (str(path) == prefix or str(path).startswith(prefix.rstrip("/") + "/")):
            return shown + str(path)[len(prefix.rstrip("/")):]
    return str(path)


def _default(action: argparse.Action) -> str:
    value = action.default
    if value is None or value is argparse.SUPPRESS or action.nargs == 0 or value == []:
        return ""
    if isinstance(value, Path):
        return code(_path_default(value))
    if (isinstance(value, tuple) and len(value) == 2 and action.metavar == "HxW"
            and all(isinstance(v, int) for v in value)):
        return code(f"{value[0]}x{value[1]}")
    if isinstance(value, (list, tuple)):
        return code(" ".join(map(str, value)))
    return code(value)


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None and not isinstance(action.metavar, tuple):
        return str(action.metavar)
    return action.dest.upper()


def _args(action: argparse.Action) -> str:
    """The values an argument takes, written the way `--help` writes them."""
    nargs, m = action.nargs, _metavar(action)
    if nargs == 0:
        return ""
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    if nargs is None:
        return m
    if nargs == "?":
        return f"[{m}]"
    if nargs == "*":
        return f"[{m} ...]"
    if nargs == "+":
        return f"{m} [{m} ...]"
    if isinstance(nargs, int):
        return " ".join([m] * nargs)
    return m


def _spelling(action: argparse.Action) -> str:
    if not action.option_strings:
        return _args(action)
    values = _args(action)
    return ", ".join(f"{o} {values}".strip() for o in action.option_strings)


def _help(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's %(default)s-style fields filled in."""
    text = action.help or ""
    if "%" in text:
        params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
        params["prog"] = prog
        if params.get("choices") is not None:
            params["choices"] = ", ".join(map(str, params["choices"]))
        with contextlib.suppress(KeyError, TypeError, ValueError):
            text = text % params
    if (isinstance(action, (argparse._AppendAction, argparse._AppendConstAction))
            and "repeatable" not in text):
        text = "; ".join(filter(None, [text, "repeatable"]))
    return text


def _required(action: argparse.Action) -> bool:
    # positionals: argparse's `required` for nargs="*" differs between Python versions
    if not action.option_strings:
        return action.nargs not in ("?", "*")
    return bool(action.required)


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
            and a.help is not argparse.SUPPRESS]


def _synopsis(parser: argparse.ArgumentParser) -> str:
    grouped = {id(a): g for g in parser._mutually_exclusive_groups for a in g._group_actions}
    parts, seen, optional = [parser.prog], set(), False
    for a in _arguments(parser):
        if not a.option_strings:
            continue
        group = grouped.get(id(a))
        if group is not None and group.required:
            if id(group) not in seen:
                seen.add(id(group))
                parts.append("(" + " | ".join(f"{g.option_strings[-1]} {_args(g)}".strip()
                                              for g in group._group_actions) + ")")
        elif _required(a):
            parts.append(f"{a.option_strings[-1]} {_args(a)}".strip())
        else:
            optional = True
    if optional:
        parts.append("[options]")
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    parts += [(s.metavar or "COMMAND") + " ..." for s in subs]
    parts += [_args(a) for a in _arguments(parser) if not a.option_strings]
    return " ".join(parts)


def _subcommands(parser: argparse.ArgumentParser):
    """(name, aliases, help, parser) for each subcommand, in the order they were added."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {c.dest: c.help for c in action._choices_actions}
        names: dict[int, list[str]] = {}
        parsers: dict[int, argparse.ArgumentParser] = {}
        for name, sub in action.choices.items():
            names.setdefault(id(sub), []).append(name)
            parsers[id(sub)] = sub
        for key, (name, *aliases) in names.items():
            yield name, aliases, helps.get(name) or "", parsers[key]


def _anchor(title: str) -> str:
    """GitHub's heading anchor."""
    slug = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return slug.replace(" ", "-")


def _command_section(parser: argparse.ArgumentParser, aliases: list[str], help_: str) -> str:
    out = [f"## `{parser.prog}`\n"]
    if help_:
        out.append(f"*{cell(help_)}*" + (f" (aliases: {', '.join(map(code, aliases))})"
                                           if aliases else "") + "\n")
    if parser.description:
        out.append(" ".join(parser.description.split()) + "\n")
    out.append(f"```\n{_synopsis(parser)}\n```\n")
    subs = list(_subcommands(parser))
    if subs:
        out.append("Actions: " + ", ".join(
            f"[`{name}`](#{_anchor(sub.prog)})" for name, _, _, sub in subs) + ".\n")
    rows = []
    for a in _arguments(parser):
        rows.append([code(_spelling(a)),
                     ", ".join(map(code, a.choices)) if a.choices is not None else "",
                     "required" if _required(a) else _default(a),
                     _help(a, parser.prog)])
    if rows:
        out.append(table(["argument", "choices", "default", "description"], rows))
    for group in parser._mutually_exclusive_groups:
        flags = ", ".join(code(g.option_strings[-1] if g.option_strings else _metavar(g))
                          for g in group._group_actions)
        out.append(("Exactly one" if group.required else "At most one") + f" of {flags}.\n")
    return "\n".join(out)


def cli_reference() -> str:
    """Every `edgeseg` subcommand with its arguments, from `edgeseg.cli.main.build_parser`."""
    from edgeseg.cli.main import build_parser

    parser = build_parser()
    sections, index = [], []

    def walk(p: argparse.ArgumentParser, aliases: list[str], help_: str) -> None:
        sections.append(_command_section(p, aliases, help_))
        index.append([f"[`{p.prog}`](#{_anchor(p.prog)})", help_])
        for _, sub_aliases, sub_help, sub in _subcommands(p):
            walk(sub, sub_aliases, sub_help)

    for _, aliases, help_, sub in _subcommands(parser):
        walk(sub, aliases, help_)
    head = [" ".join((parser.description or "").split()) + "\n",
            f"```\n{_synopsis(parser)}\n```\n"]
    top = [[code(_spelling(a)), _help(a, parser.prog)] for a in _arguments(parser)]
    if top:
        head.append(table(["global option", "description"], top))
    head.append(table(["command", "what it does"], index))
    return "\n".join(head + sections)


# ---------------------------------------------------------------------------------------
# Capability and error tables (docs/capabilities.md, docs/errors.md)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list, frozenset, set)):
        return ", ".join(code(v) if v != "" else "*(the artifact itself)*" for v in value)
    return str(value)


def _label(name: str) -> str:
    return {"files": "files it runs", "runtime": "deployable",
            "cpp": "C++ runtime", "judged_in": "judged in", "weight_bits": "weight bits",
            "install": "install"}.get(name, name.replace("_", " "))


def dataclass_table(records: dict[str, object], key: str) -> str:
    """One row per record, one column per dataclass field (fields added later show up on
    their own); fields with long text go to a list under the table."""
    items = list(records.values())
    fields = [f.name for f in dataclasses.fields(items[0])]
    long = [f for f in fields if any(isinstance(getattr(r, f), str)
                                     and len(getattr(r, f)) > 60 for r in items)]
    short = [f for f in fields if f not in long]
    rows = [[code(getattr(r, f)) if f == key else _value(getattr(r, f)) for f in short]
            for r in items]
    out = table([_label(f) for f in short], rows)
    if long:
        out += "\n" + "".join(
            f"- **{getattr(r, key)}**: " + "; ".join(f"*{_label(f)}*: {cell(getattr(r, f))}"
                                                     for f in long) + "\n"
            for r in items)
    return out


def engines_table() -> str:
    """The engines, from `edgeseg.core.capabilities.ENGINES`."""
    from edgeseg.core import capabilities

    out = dataclass_table(capabilities.ENGINES, "name")
    order = getattr(capabilities, "AUTO_ORDER", None)
    if order:
        out += "\nAutomatic choice (`backend=\"auto\"`), in order: " + ", ".join(
            map(code, order)) + ".\n"
    return out


def targets_table() -> str:
    """The INT8 targets, from `edgeseg.core.capabilities.TARGETS`."""
    from edgeseg.core import capabilities

    return dataclass_table(capabilities.TARGETS, "name")


def precisions_table() -> str:
    """The precisions, from `edgeseg.core.capabilities.PRECISIONS`."""
    from edgeseg.core import capabilities

    return table(["precision", "meaning"],
                 [[code(k), v] for k, v in capabilities.PRECISIONS.items()])


def errors_table() -> str:
    """Exit codes and error types, from `edgeseg.core.errors`."""
    from edgeseg.core import errors

    out = table(["exit code", "meaning"], [[code(k), v] for k, v in errors.EXIT_CODES.items()])
    base = errors.EdgesegError
    kinds = [c for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, base) and c.__module__ == errors.__name__]
    rows = []
    for c in kinds:
        builtins = [b.__name__ for b in c.__mro__[1:]
                    if b.__module__ == "builtins" and b not in (Exception, BaseException, object)]
        doc = " ".join((c.__doc__ or "").split("\n\n")[0].split())
        rows.append([code(c.__name__), code(c.exit_code), ", ".join(map(code, builtins)), doc])
    out += "\n" + table(["error type", "exit code", "also a", "raised for"], rows)
    return out


def minimal_cpp() -> str:
    """cpp/examples/minimal.cpp, the complete C++ application, as it is built."""
    return "```cpp\n" + (ROOT / "cpp/examples/minimal.cpp").read_text().rstrip("\n") + "\n```\n"
