"""The README and docs/ pages: generated blocks current, the quick start names real targets,
every relative link resolves, and the README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250


def load_updater():
    return load_script("update_readme")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_generated_blocks_are_current():
    updater = load_updater()
    texts = {path: path.read_text() for path in updater.files()}
    assert set(texts) == set(pages())
    new = updater.updated_texts(texts)
    stale = [str(path.relative_to(ROOT)) for path in texts if new[path] != texts[path]]
    assert not stale, f"stale: {', '.join(stale)}; run `make readme`"


def test_block_markers_are_checked():
    updater = load_updater()
    texts = {path: path.read_text() for path in updater.files()}
    everything = "".join(texts.values())
    for name in updater.BLOCKS:
        assert f"<!-- {name}:begin -->" in everything
    readme = ROOT / "README.md"
    with pytest.raises(SystemExit, match="names no block"):
        updater.updated_texts({**texts, readme: texts[readme] + "<!-- nope:begin -->\n"
                                                               "<!-- nope:end -->\n"})
    with pytest.raises(SystemExit, match="no <!-- models:end -->"):
        updater.updated_texts({**texts, readme: texts[readme] + "<!-- models:begin -->\n"})
    name = next(iter(updater.BLOCKS))
    marker = re.compile(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", re.DOTALL)
    without = {path: marker.sub("", text) for path, text in texts.items()}
    with pytest.raises(SystemExit, match=f"no file has the block\\(s\\) {name}"):
        updater.updated_texts(without)


def test_quick_start_targets_exist():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)
    assert "make test" in (ROOT / ".ci/run").read_text()
    assert re.search(r"^readme:.*\n\t.*scripts/update_readme\.py", makefile, re.MULTILINE)


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move reference to docs/"


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    body = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", body, re.MULTILINE):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(text: str) -> list[str]:
    """Targets of inline links [text](target); a `code` label is dropped with the code."""
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(text))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif not dest.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
