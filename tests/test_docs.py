"""The user docs hold together: README.md and docs/*.md link only to files (and headings) that
exist, name only `make` targets and variables the Makefile has, and `make help` lists every
command.

Pure text checks (no TensorFlow, no model): the Markdown is read with regular expressions after
its code blocks and inline code are set aside, the way GitHub renders it. Anchors are checked
against GitHub's heading slugs (lower case, punctuation dropped, spaces to hyphens).
"""

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAKEFILE = (ROOT / "Makefile").read_text()

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]+`")
# The target of every link and image, `[text](target)` and `![alt](target)`, nested ones too
# (a linked picture is `[![alt](image.png)](page.md)`).
MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# `make [VAR=...] target` and the rest of its line, where its variables are.
MAKE_CALL = re.compile(r"\bmake\s+((?:[A-Z_]+=\S*\s+)*)([a-z][a-z0-9_-]*)([^\n`]*)")


def prose(text: str) -> str:
    """The text as GitHub renders links in it: fenced blocks and inline code removed."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def code(text: str) -> str:
    """Fenced blocks and inline code: where the docs show commands."""
    return "\n".join(FENCE.findall(text) + INLINE_CODE.findall(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen, out = {}, set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    text = prose(page.read_text())
    return MD_LINK.findall(text) + HTML_LINK.findall(text)


def make_targets() -> set[str]:
    """Every explicit rule target of the Makefile (not variables, not pattern rules)."""
    targets = set()
    for line in MAKEFILE.splitlines():
        m = re.match(r"^([A-Za-z0-9_.$()/ -]+?)\s*::?(?![=])", line)
        if m and not line.startswith("\t"):
            targets.update(t for t in m.group(1).split() if "$" not in t and "%" not in t)
    return targets


def phony_targets() -> set[str]:
    names = set()
    for m in re.finditer(r"^\.PHONY\s*:(.*)$", MAKEFILE, re.M):
        names.update(m.group(1).split())
    return names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = unquote(target).partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if ROOT in dest.parents else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: " + "; ".join(broken)


def test_the_readme_links_every_docs_page_and_shows_pictures():
    readme = ROOT / "README.md"
    linked = {(readme.parent / unquote(t).partition("#")[0]).resolve() for t in links(readme)}
    unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"
    images = [t for t in links(readme) if t.endswith(".png")]
    assert len(images) >= 3, images
    for image in images:
        size = (ROOT / image).stat().st_size
        assert size <= 160_000, f"{image}: {size} bytes; keep the README's pictures small"


def test_every_picture_in_docs_images_is_shown_and_small():
    shown = {(page.parent / unquote(t).partition("#")[0]).resolve() for page in PAGES for t in links(page)}
    for image in sorted((ROOT / "docs" / "images").iterdir()):
        assert image.resolve() in shown, f"{image.relative_to(ROOT)} is on no page"
        assert image.stat().st_size <= 160_000, f"{image.relative_to(ROOT)}: {image.stat().st_size} bytes"


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_make_target_and_variable_named_exists(page):
    targets, makefile_words = make_targets(), set(re.findall(r"\b[A-Z][A-Z0-9_]*\b", MAKEFILE))
    missing = []
    for before, target, after in MAKE_CALL.findall(code(page.read_text())):
        if target not in targets:
            missing.append(f"make {target}")
        for var in re.findall(r"\b([A-Z][A-Z0-9_]*)=", before + after):
            if var not in makefile_words:
                missing.append(f"{var}= (make {target})")
    assert not missing, f"{page.relative_to(ROOT)} names what the Makefile lacks: {sorted(set(missing))}"


def test_make_help_lists_every_command_and_nothing_else():
    out = subprocess.run(["make", "-s", "--no-print-directory", "help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    listed = set(re.findall(r"^\s+([a-z][a-z0-9_-]*)\s{2,}", out, re.M))
    commands = phony_targets()
    assert commands, "no .PHONY line in the Makefile"
    assert listed == commands, (f"make help lacks {sorted(commands - listed)}; "
                                f"lists what is not a command: {sorted(listed - commands)}")


def test_the_link_checker_finds_broken_links(tmp_path):
    """The checks above can fail: a page with a missing file, a missing anchor and an unknown
    make target is caught."""
    (tmp_path / "other.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text("[a](missing.md) [b](other.md#no-such) [c](other.md#a-heading) "
                    "![d](https://example.org/x.png)\n```\nmake no-such-target\n```\n")
    found = []
    for target in links(page):
        if target.startswith("http"):
            continue
        path, _, anchor = target.partition("#")
        dest = page.parent / path
        found.append(dest.exists() and (not anchor or anchor in anchors(dest)))
    assert found == [False, False, True]
    assert MAKE_CALL.findall(code(page.read_text()))[0][1] not in make_targets()
    assert slug("Precision: what `PRECISION=auto` picks on each CPU") == \
        "precision-what-precisionauto-picks-on-each-cpu"
