"""Sphinx additions of this book (a local extension, listed in ``_config.yml``).

- **Notebooks download as ``.ipynb``.** The notebooks are jupytext text files; the theme's
  download menu offers the source (``.py``) and, when a page defines ``ipynb_source``, a
  notebook. Each notebook page gets the notebook myst-nb executed for it (with its outputs,
  ``_build/jupyter_execute/notebooks/NAME.ipynb``), copied next to the page sources.
- **Figures have alt text and open at full size.** An image inside a captioned figure whose
  alternative text is missing or a placeholder (matplotlib's ``<Figure size …>``) gets the
  caption as its alt text; ``figures.js`` makes every figure a link to its full-size PNG and
  lets a wide figure span the text column and the margin (``pfode.css``), so that its labels
  are shown at a legible size.
- **Wide equations scroll in their box** (``pfode.css``) instead of running under the
  equation number.
- **Each script once.** sphinx-thebe registers its configuration script once per read phase,
  so a page can declare ``const THEBE_JS_URL`` twice, which is a console error; duplicate
  scripts are dropped from every page.
"""
from __future__ import annotations

import shutil
from pathlib import Path


def _notebook_of(app, pagename: str) -> Path | None:
    if not pagename.startswith("notebooks/"):
        return None
    path = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    return path if path.is_file() else None


def add_notebook_download(app, pagename, templatename, context, doctree):
    executed = _notebook_of(app, pagename)
    if executed is None:
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _placeholder(alt: str) -> bool:
    return not alt.strip() or alt.startswith("<Figure") or alt.endswith((".png", ".svg"))


def caption_alt_text(app, doctree, docname):
    from docutils import nodes
    for figure in doctree.findall(nodes.figure):
        caption = next(iter(figure.findall(nodes.caption)), None)
        if caption is None:
            continue
        text = " ".join(caption.astext().split())
        for image in figure.findall(nodes.image):
            if _placeholder(image.get("alt", "")):
                image["alt"] = text[:400]


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        # an inline script is known by its body (sphinx-thebe's copies differ in filename, '' or None)
        key = ("body", attributes["body"]) if attributes.get("body") else ("file", str(script))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.add_js_file("figures.js")
    app.add_css_file("pfode.css")
    app.connect("doctree-resolved", caption_alt_text)
    # before the theme builds its header buttons (priority 500)
    app.connect("html-page-context", add_notebook_download, priority=400)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
