"""Every relative link in README.md and docs/*.md resolves: to a file or directory of the repository,
and, when it names an anchor in a Markdown file, to a heading of that file (GitHub's slugs). Links in
code blocks and to other sites are not checked."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(h) for h in _HEADING.findall(text)}


def _links(path: Path) -> list[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return _LINK.findall(text)


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in filter(_relative, _links(doc)):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / unquote(file_part)).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_docs_exist() -> None:
    """The front door and the pages it promises."""
    names = {p.name for p in DOCS}
    pages = ("endpoints", "configuration", "operations", "keycloak", "architecture", "security", "providers")
    for page in pages:
        assert f"{page}.md" in names


def test_slug_rules() -> None:
    assert _slug("`/oauth/auth`") == "oauthauth"
    assert _slug("Registering the proxy's client in Keycloak") == "registering-the-proxys-client-in-keycloak"
    facts = "Facts that matter to the proxy (measured live)"
    assert _slug(facts) == "facts-that-matter-to-the-proxy-measured-live"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md#title) [bad](missing.md)\n```\n[in code](nowhere.md)\n```\n# Title\n")
    assert _links(page) == ["page.md#title", "missing.md"]
    assert _anchors(page) == {"title"}
