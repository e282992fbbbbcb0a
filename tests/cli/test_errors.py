"""One error grammar: expected failures print one line and their exit code; bugs print a
traceback only with --debug."""

from __future__ import annotations

import argparse

import pytest

from edgeseg.cli import main as cli_main
from edgeseg.core.errors import CheckFailed, EngineUnavailable, UsageError


def fake_command(monkeypatch, exc):
    original = cli_main.build_parser

    def build(only=None):
        parser = original("models")
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        p = sub.add_parser("boom")

        def run(args):
            raise exc

        p.set_defaults(func=run)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)


@pytest.mark.parametrize("exc, code", [(UsageError("use --x"), 2), (CheckFailed("low"), 1),
                                       (EngineUnavailable("pip install y"), 3)])
def test_expected_failures_are_one_line_with_their_code(monkeypatch, capsys, exc, code):
    fake_command(monkeypatch, exc)
    assert cli_main.main(["boom"]) == code
    err = capsys.readouterr().err
    assert err == f"error: {exc}\n"


def test_a_bug_says_so_and_shows_the_traceback_only_with_debug(monkeypatch, capsys):
    fake_command(monkeypatch, ZeroDivisionError("oops"))
    assert cli_main.main(["boom"]) == 70
    err = capsys.readouterr().err
    assert "unexpected ZeroDivisionError: oops" in err and "--debug" in err
    assert "Traceback" not in err
    assert cli_main.main(["--debug", "boom"]) == 70
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_json_means_stdout_or_a_file(tmp_path, capsys):
    import json

    with pytest.raises(SystemExit):  # a positional after --json is not taken as its FILE
        cli_main.main(["models", "--json", "bisenetv2"])
    assert "is not a .json file" in capsys.readouterr().err
    assert cli_main.main(["models", "bisenetv2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["name"] == "bisenetv2"
    out = tmp_path / "m.json"
    assert cli_main.main(["models", "bisenetv2", "--json", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(out.read_text())["models"][0]["name"] == "bisenetv2"
