"""``book/theorems.md`` lists every definition, lemma, proposition, theorem and algorithm of the
book with its title, by chapter, linked to its statement.

The list is derived from the ``{prf:…}`` directives of ``book/*.md`` (in the order of
``_toc.yml``); this test fails, naming the first difference, when the committed page and the
sources disagree. Regenerate the page with::

    python tests/test_theorem_index.py > book/theorems.md
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("definition", "lemma", "proposition", "theorem", "corollary", "algorithm")
OPEN = re.compile(r"^(`{3,}|:{3,})\{prf:(" + "|".join(KINDS) + r")\}\s*(.*?)\s*$")
LABEL = re.compile(r"^\s*:label:\s*(\S+)\s*$")
TITLE = re.compile(r"^#\s+(.+?)\s*$", re.M)

HEADER = """(theorems)=
# Definitions, theorems and algorithms

Every definition, lemma, proposition, theorem and algorithm of the book, by chapter, with a link
to its statement and proof. The terms they define and use are in the {ref}`genindex`.
"""


def toc_pages() -> list[str]:
    """The ``book/*.md`` pages of ``_toc.yml``, in reading order (``book/ch02_pfode``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                pages.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))
    walk(toc.get("parts"))
    return [p for p in pages if p.startswith("book/")]


def statements(page: str) -> list[tuple[str, str, str]]:
    """``(kind, title, label)`` of each labelled ``prf`` directive of one page, in order."""
    lines = (ROOT / f"{page}.md").read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = OPEN.match(line)
        if not m:
            continue
        label = next((LABEL.match(x).group(1) for x in lines[i + 1:i + 6] if LABEL.match(x)), None)
        assert label, f"{page}.md:{i + 1}: a {m.group(2)} without a :label: cannot be listed"
        assert m.group(3), f"{page}.md:{i + 1}: the {m.group(2)} {label} has no title"
        out.append((m.group(2), m.group(3), label))
    return out


def render() -> str:
    """The page ``book/theorems.md`` as the sources define it."""
    parts = [HEADER]
    for page in toc_pages():
        found = statements(page)
        if not found:
            continue
        title = TITLE.search((ROOT / f"{page}.md").read_text(encoding="utf-8")).group(1)
        parts.append(f"\n## {title}\n\n")
        parts.extend(f"- {kind.capitalize()}: {{prf:ref}}`{name} <{label}>`\n"
                     for kind, name, label in found)
    return "".join(parts)


def test_theorem_index_matches_the_sources():
    committed = (ROOT / "book" / "theorems.md").read_text(encoding="utf-8").splitlines()
    expected = render().splitlines()
    for i, (got, want) in enumerate(zip(committed, expected), 1):
        assert got == want, (f"book/theorems.md:{i} is {got!r}, the sources give {want!r}; "
                             "regenerate: python tests/test_theorem_index.py > book/theorems.md")
    assert len(committed) == len(expected), (
        f"book/theorems.md has {len(committed)} lines, the sources give {len(expected)}; "
        "regenerate: python tests/test_theorem_index.py > book/theorems.md")


def test_every_statement_is_found():
    """The parser sees every prf directive of the pages (none is skipped by its syntax)."""
    for page in toc_pages():
        text = (ROOT / f"{page}.md").read_text(encoding="utf-8")
        n = len(re.findall(r"\{prf:(?:" + "|".join(KINDS) + r")\}", text))
        assert n == len(statements(page)), page


if __name__ == "__main__":
    print(render(), end="")
