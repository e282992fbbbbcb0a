"""The conversion framework, with a toy source (tests/convert/toy_source.py): every tensor
accounted for, strict loading, bad files refused by name, the result an edgeseg checkpoint."""

from __future__ import annotations

import pytest
import torch

from edgeseg import convert as conv
from edgeseg.checkpoint import model_from_checkpoint
from edgeseg.core.errors import EdgesegError, UsageError
from tests.convert import toy_source


class NeedsCode:
    pass


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.setitem(conv.SOURCES, "toy", ("tests.convert.toy_source", "a test source"))
    path = tmp_path / "toy.pth"
    torch.save({"state_dict": toy_source.published_state()}, path)
    return path


def test_a_published_state_dict_becomes_an_edgeseg_checkpoint(toy, tmp_path):
    out = conv.convert("toy", toy, tmp_path / "c.pt", log=lambda m: None)
    model, classes, _ = model_from_checkpoint(out)
    ours = toy_source.published_state()
    for theirs, mine in toy_source.RENAMES.items():
        assert torch.equal(model.state_dict()[mine], ours[theirs])
    assert classes.name == "voc" and classes.num_classes == 21


def test_every_tensor_is_used_or_dropped_by_name(toy, tmp_path):
    state = toy_source.published_state()
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, toy)
    with pytest.raises(conv.ConversionError, match="neither converted nor known.*extra.weight"):
        conv.convert("toy", toy, tmp_path / "c.pt", log=lambda m: None)
    assert not (tmp_path / "c.pt").exists()


def test_bad_files_and_sources_are_named_errors(toy, tmp_path):
    with pytest.raises(UsageError, match="unknown convert source 'nope'; known: "):
        conv.convert("nope", toy, tmp_path / "c.pt")
    truncated = tmp_path / "t.pth"
    truncated.write_bytes(toy.read_bytes()[:100])
    with pytest.raises(conv.ConversionError, match="not a loadable PyTorch checkpoint"):
        conv.convert("toy", truncated, tmp_path / "c.pt")

    bad = tmp_path / "code.pth"  # a pickle that needs code to load
    torch.save({"state_dict": toy_source.published_state(), "obj": NeedsCode()}, bad)
    with pytest.raises(conv.ConversionError, match="would run code"):
        conv.convert("toy", bad, tmp_path / "c.pt")
    with pytest.raises(EdgesegError, match="not found"):
        conv.convert("toy", tmp_path / "missing.pth", tmp_path / "c.pt")


def test_models_pretrained_lists_what_each_source_publishes(capsys):
    from edgeseg.cli.main import main

    assert main(["models", "--pretrained", "deeplabv3plus", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["source"] for r in rows} == {"mmseg", "vainf-deeplabv3plus"}
    assert {"model", "variant", "classes", "dataset", "input", "miou", "file"} <= set(rows[0])
    assert main(["models", "--pretrained"]) == 0
    table = capsys.readouterr().out
    assert "coincheung-bisenet" in table and "model_final_v2_city.pth" in table
