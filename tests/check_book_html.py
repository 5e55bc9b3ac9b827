"""Checks of the rendered book that Sphinx does not make: run by ``make book`` after the build.

    python tests/check_book_html.py [_build/html]

Each check reads the built HTML (BeautifulSoup, which the book theme already depends on) and
reports every offending page with the text it found:

- **tables render as tables**: a paragraph or text output made of ``| a | b |`` rows with a
  ``|---|`` separator is a Markdown table that was not parsed (for instance a ``Markdown``
  display whose rows lost their line breaks);
- **glued values are resolved**: no literal ``{glue:`` role survives in the text;
- **figures exist**: every ``<img>`` of a page points at a file of the build, and has a real
  alternative text (not empty, not matplotlib's ``<Figure size …>``);
- **no stderr**: no cell output shows a stderr stream (warnings, progress-bar fallbacks);
- **no local paths**: no text shows an absolute path of the machine that built the book
  (the repository root, a home folder, a ``site-packages`` folder);
- **no raw TeX in titles**: page titles, cross-reference texts and navigation entries hold no
  TeX source (``\\sigma``, ``$…$``): a title with a formula must render it or avoid it.

Exit status 1 when any check fails.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

# |---| or | :--- |, also after smart quotes turned the dashes into an em or en dash
_SEPARATOR = re.compile(r"\|\s*:?(?:-{3,}|[\u2014\u2013]+):?\s*\|")
_ROW = re.compile(r"^\s*\|(?:[^|\n]*\|){2,}\s*$", re.M)  # | a | b |


def _plain(text: str) -> str:
    """Text without the norm bars of formulas (``\\|``, ``||``)."""
    return text.replace("\\|", " ").replace("||", " ")


def unrendered_tables(soup: BeautifulSoup) -> list[str]:
    """Paragraphs holding Markdown table rows, and text outputs holding a ``|---|`` separator:
    a Markdown table that was not parsed as one."""
    found = []
    for tag in soup.find_all(["p", "pre"]):
        if tag.find_parent("div", class_="cell_input"):
            continue                      # source code may build table strings
        text = _plain(tag.get_text())
        rows = _ROW.findall(text)
        if _SEPARATOR.search(text) or (tag.name == "p" and (len(rows) >= 2 or
                                                            text.lstrip().startswith("|"))):
            found.append(" ".join(text.split())[:120])
    return found


def unresolved_glue(soup: BeautifulSoup) -> list[str]:
    """Literal ``{glue:…}`` roles left in the rendered text (outside code)."""
    found = []
    for tag in soup.find_all(["p", "figcaption", "td", "li"]):
        text = tag.get_text()
        if "{glue:" in text:
            found.append(" ".join(text.split())[:120])
    return found


def missing_images(soup: BeautifulSoup, page: Path) -> list[str]:
    """``<img>`` sources that are not files of the build (data URIs and URLs skipped)."""
    found = []
    for img in soup.find_all("img"):
        src = img.get("src", "")
        if not src or src.startswith(("data:", "http:", "https:")):
            continue
        if not (page.parent / src.split("#")[0]).is_file():
            found.append(src)
    return found


def missing_alt_text(soup: BeautifulSoup) -> list[str]:
    """``<img>`` whose alternative text is empty or a placeholder."""
    found = []
    for img in soup.find_all("img"):
        alt = (img.get("alt") or "").strip()
        if not alt or alt.startswith("<Figure") or alt.endswith((".png", ".svg")):
            found.append(img.get("src", "?"))
    return found


def stderr_outputs(soup: BeautifulSoup) -> list[str]:
    """Cell outputs of the stderr stream (myst-nb's ``output stderr`` blocks)."""
    return [" ".join(tag.get_text().split())[:120] for tag in soup.select("div.output.stderr")]


_LOCAL = re.compile(r"(?:/home/|/Users/|/root/|/tmp/|site-packages/)[^\s\"'<>]*")


def local_paths(soup: BeautifulSoup, root: str | None = None) -> list[str]:
    """Absolute paths of the build machine in the rendered text (code sources excluded)."""
    found = []
    for tag in soup.find_all(["p", "pre", "li", "td", "figcaption", "span"]):
        if tag.find_parent("div", class_="cell_input"):
            continue
        text = tag.get_text()
        hits = _LOCAL.findall(text) + ([root] if root and root in text else [])
        found += [h[:120] for h in hits]
    return sorted(set(found))


_TEX = re.compile(r"\\[A-Za-z]+|\$[^$]+\$|\\\(")


def raw_tex_titles(soup: BeautifulSoup) -> list[str]:
    """TeX source in the page title, in cross-reference texts and in navigation links."""
    texts = [soup.title.get_text()] if soup.title else []
    texts += [a.get_text() for a in soup.select("a.reference, nav a, .toctree-wrapper a")
              if not a.find(class_="math") and not a.find("mjx-container")]
    return sorted({" ".join(t.split())[:120] for t in texts if _TEX.search(t)})


def check(html_dir: Path, root: str | None = None) -> list[str]:
    """Every failure, as ``"<page>: <check>: <what>"``."""
    pages = sorted(html_dir.rglob("*.html"))
    if not pages:
        return [f"{html_dir}: no HTML pages (build the book first: make book)"]
    failures = []
    for page in pages:
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        main = soup.find("main") or soup
        rel = page.relative_to(html_dir)
        failures += [f"{rel}: stderr output: {t}" for t in stderr_outputs(main)]
        failures += [f"{rel}: local path: {t}" for t in local_paths(main, root)]
        failures += [f"{rel}: raw TeX in a title: {t}" for t in raw_tex_titles(soup)]
        failures += [f"{rel}: table not rendered: {t}" for t in unrendered_tables(main)]
        failures += [f"{rel}: unresolved glue: {t}" for t in unresolved_glue(main)]
        failures += [f"{rel}: missing image: {s}" for s in missing_images(main, page)]
        failures += [f"{rel}: no alt text: {s}" for s in missing_alt_text(main)]
    return failures


def main(argv: list[str]) -> int:
    html_dir = Path(argv[1] if len(argv) > 1 else "_build/html")
    failures = check(html_dir, root=str(Path(__file__).resolve().parents[1]))
    for f in failures:
        print(f"check_book_html: {f}", file=sys.stderr)
    n = sum(1 for _ in html_dir.rglob("*.html"))
    print(f"check_book_html: {n} pages, {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
