"""Every book citation in the library points at a target the book defines.

The library cites the book as ``[book: LABEL]`` (one label per bracket), where LABEL is a MyST
target defined in ``book/*.md``: a ``(LABEL)=`` line before a heading, a ``:label: LABEL``
option of a directive (``prf:theorem``, ``math``, ...), a ``:name: LABEL`` option (figures)
or a labelled display equation ``$$ (LABEL)``. A renamed or deleted label in the book, or a
typo in a docstring, fails here with the file, the line and the label, rather than leaving a
citation that leads nowhere.

Citations are found by a regular expression over the whole source text, so they count in
docstrings and comments alike.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "pfode"
BOOK = ROOT / "book"

CITATION = re.compile(r"\[book:\s*([^\]]*?)\s*\]")
LABEL_SYNTAX = re.compile(r"[A-Za-z0-9][\w.:-]*")
DEFINITIONS = (
    re.compile(r"^\s*\(([^()\s]+)\)=\s*$"),            # (ch-pfode)=
    re.compile(r"^\s*:label:\s*(\S+)\s*$"),            # :label: eq-gmm-velocity
    re.compile(r"^\s*:name:\s*(\S+)\s*$"),             # :name: fig-ch14-training-loss
    re.compile(r"\$\$\s*\(([^()\s]+)\)\s*$"),          # $$ (eq-ch2-continuity)
)


def book_labels() -> dict[str, str]:
    """``{label: "book/FILE.md:LINE"}`` of every target defined in the chapter pages."""
    labels: dict[str, str] = {}
    for md in sorted(BOOK.glob("*.md")):
        for lineno, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
            for pattern in DEFINITIONS:
                m = pattern.search(line)
                if m:
                    labels.setdefault(m.group(1), f"{md.relative_to(ROOT)}:{lineno}")
    return labels


def citations() -> list[tuple[str, int, str]]:
    """``(file, line, label)`` of every ``[book: LABEL]`` in ``lib/pfode/*.py``."""
    found = []
    for py in sorted(LIB.glob("*.py")):
        text = py.read_text(encoding="utf-8")
        for m in CITATION.finditer(text):
            lineno = text.count("\n", 0, m.start()) + 1
            found.append((str(py.relative_to(ROOT)), lineno, m.group(1)))
    return found


def test_book_defines_labels():
    # Guards the parser: if the book's label syntax changed, every citation would look broken.
    labels = book_labels()
    assert "ch-pfode" in labels and "eq-gmm-velocity" in labels, sorted(labels)[:20]


def test_library_cites_the_book():
    # At least one citation, so that the existence check below cannot pass vacuously.
    assert citations(), "no [book: LABEL] citation found in lib/pfode/*.py"


def test_every_cited_label_exists():
    labels = book_labels()
    bad = []
    for path, lineno, label in citations():
        if not LABEL_SYNTAX.fullmatch(label):
            bad.append(f"{path}:{lineno}: [book: {label}] is not a single label "
                       f"(write one [book: LABEL] per target)")
        elif label not in labels:
            bad.append(f"{path}:{lineno}: label {label!r} is not defined in book/*.md")
    assert not bad, "\n".join(bad)


def test_no_math_md():
    # MATH.md is not part of the repository: the library cites the book's labels instead.
    hits = []
    for f in sorted(LIB.rglob("*")):
        if not f.is_file() or "__pycache__" in f.parts:
            continue
        for lineno, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if "math.md" in line.lower():
                hits.append(f"{f.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not hits, ("lib/pfode mentions MATH.md; cite the book as [book: LABEL] instead:\n"
                      + "\n".join(hits))
