"""The README's papermill command for a user's own pipeline, end to end, on tiny folders laid
out like SD3.5 (text encoders, no cached embeddings) and FLUX.1: the chapter 14 notebook in
pipeline mode runs through, writes its figures and tables, and asserts only what holds for any
model."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
papermill = pytest.importorskip("papermill")

sys.path.insert(0, str(Path(__file__).parent))
import tiny_pipelines as tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "ch14_correlation_trained_vs_exact.py"


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    import jupytext
    d = tmp_path_factory.mktemp("nb")
    path = d / "ch14.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK), path)
    return path


@pytest.mark.parametrize("kind", ["sd35", "flux"])
def test_readme_pipeline_command_runs_end_to_end(notebook, tmp_path, monkeypatch, kind):
    folder = (tiny.sd3_folder(tmp_path / "tiny-sd35") if kind == "sd35"
              else tiny.flux_folder(tmp_path / "tiny-flux", guidance=True))
    images = tiny.images(tmp_path / "images", count=3, size=20)
    monkeypatch.setenv("PFODE_ROOT", str(ROOT))
    monkeypatch.setenv("PFODE_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("PFODE_SMOKE", "")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "out.ipynb"
    params = dict(pipeline_path=str(folder), image_dir=str(images), image_size=16, steps=4,
                  num_images=3, n_boot=100, max_sequence_length=6)
    if kind == "sd35":
        params.update(prompt="a photo", guidance_scale=2.0)
    papermill.execute_notebook(str(notebook), str(out), parameters=params, progress_bar=False,
                               cwd=str(tmp_path))
    text = out.read_text()
    assert "PipelineField(" in text                               # it ran on the pipeline
    assert os.listdir(tmp_path / "figures")                        # and wrote its figures
    if kind == "sd35":
        assert (folder / "null_conditioning.pt").exists()          # the negative (empty) prompt, cached
