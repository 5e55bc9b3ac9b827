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
    body = ("<figure><img src='ok.png' alt='a curve'/><img src='gone.png' alt='a curve'/>"
            "<figcaption>K = {glue:text}`K`</figcaption></figure>")
    failures = chk.check(_page(tmp_path, body))
    assert sorted(f.split(": ")[1] for f in failures) == ["missing image", "unresolved glue"]


def test_empty_build_is_an_error(tmp_path):
    assert "no HTML pages" in chk.check(tmp_path)[0]
    assert chk.main(["x", str(tmp_path)]) == 1


@pytest.mark.parametrize("body, kind", [
    ("<div class='cell_output docutils container'><div class='output stderr highlight-myst-ansi'>"
     "<pre>TqdmWarning: IProgress not found</pre></div></div>", "stderr output"),
    ("<div class='output stream'><pre>warning in /home/user/venv/lib/python3.11/site-packages/tqdm/auto.py:21"
     "</pre></div>", "local path"),
    ("<p>See <a class='reference internal' href='x.html'>the bound with \\sigma_{\\max}</a>.</p>",
     "raw TeX in a title"),
])
def test_flags_stderr_local_paths_and_raw_tex(tmp_path, body, kind):
    failures = chk.check(_page(tmp_path, body))
    assert len(failures) == 1 and kind in failures[0], failures


@pytest.mark.parametrize("body", [
    "<div class='output stream'><pre>restored 6 conditions</pre></div>",
    "<p>See <a class='reference internal' href='x.html'><span class='math'>\\(\\sigma\\)</span> bound</a>.</p>",
    "<div class='cell_input'><pre>path = '/home/user/data.csv'</pre></div>",
    "<p>The folder <code>results/d3gm_learned</code> holds the table.</p>",
])
def test_passes_stdout_rendered_math_and_code_paths(tmp_path, body):
    assert chk.check(_page(tmp_path, body)) == []


def test_flags_the_repository_root(tmp_path):
    body = "<div class='output stream'><pre>saved /srv/checkout/results/table.csv</pre></div>"
    failures = chk.check(_page(tmp_path, body), root="/srv/checkout")
    assert len(failures) == 1 and "local path" in failures[0]


@pytest.mark.parametrize("alt, bad", [("", True), ("<Figure size 640x480 with 1 Axes>", True),
                                      ("ok.png", True), ("PSNR against the step count", False)])
def test_flags_images_without_alt_text(tmp_path, alt, bad):
    (tmp_path / "ok.png").write_bytes(b"")
    failures = chk.check(_page(tmp_path, f"<figure><img src='ok.png' alt='{alt}'/></figure>"))
    assert (failures != []) == bad and all("no alt text" in f for f in failures)
