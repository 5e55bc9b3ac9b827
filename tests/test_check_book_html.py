"""The rendered-book checker (tests/check_book_html.py) on hand-written pages whose verdict is
known: each defect it must catch, and the look-alikes it must let through."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "check_book_html", Path(__file__).with_name("check_book_html.py"))
chk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chk)


def _page(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    (tmp_path / name).write_text(f"<html><body><main>{body}</main></body></html>", "utf-8")
    return tmp_path


@pytest.mark.parametrize("body", [
    "<p>| a | b |\n|---|---|\n| 1 | 2 |</p>",                 # rows kept, not parsed
    "<p>| a | b | |\u2014|\u2014| | 1 | 2 |</p>",                # rows joined, dashes smartened
    "<div class='output'><pre>| a | b |\n| --- | --- |</pre></div>",
])
def test_flags_markdown_tables_left_as_text(tmp_path, body):
    failures = chk.check(_page(tmp_path, body))
    assert len(failures) == 1 and "table not rendered" in failures[0]


@pytest.mark.parametrize("body", [
    "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>",
    r"<p>The norm \(\|x - \hat x\|\) and \(|\det J|\) are numbers.</p>",
    "<pre>median E | median kappa\n0.1 | 0.2</pre>",            # a printed line, no table syntax
    "<div class='cell_input'><pre>Markdown('| a |\\n|---|')</pre></div>",
])
def test_passes_tables_formulas_and_code(tmp_path, body):
    assert chk.check(_page(tmp_path, body)) == []


def test_flags_unresolved_glue_and_missing_images(tmp_path):
    (tmp_path / "ok.png").write_bytes(b"")
    body = ("<figure><img src='ok.png'/><img src='gone.png'/>"
            "<figcaption>K = {glue:text}`K`</figcaption></figure>")
    failures = chk.check(_page(tmp_path, body))
    assert sorted(f.split(": ")[1] for f in failures) == ["missing image", "unresolved glue"]


def test_empty_build_is_an_error(tmp_path):
    assert "no HTML pages" in chk.check(tmp_path)[0]
    assert chk.main(["x", str(tmp_path)]) == 1
