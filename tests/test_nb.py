"""The notebook helpers: where the book's root and figures are, and the smoke switch."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from pfode import nb  # noqa: E402


def test_repo_root_is_the_folder_holding_toc(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv("PFODE_ROOT", raising=False)
    monkeypatch.chdir(deep)
    assert nb.repo_root() == tmp_path.resolve()


def test_repo_root_follows_pfode_root(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)                     # no _toc.yml above
    monkeypatch.setenv("PFODE_ROOT", str(tmp_path / "book"))
    assert nb.repo_root() == (tmp_path / "book").resolve()


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("false", False), ("1", True)])
def test_smoke(monkeypatch, value, expected):
    monkeypatch.setenv("PFODE_SMOKE", value)
    assert nb.smoke() is expected


def test_savefig_writes_png_and_rejects_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("PFODE_FIGURES", str(tmp_path / "figs"))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = nb.savefig(fig, "line")
    plt.close(fig)
    assert path == tmp_path / "figs" / "line.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="plain file stem"):
        nb.savefig(fig, "a/b")
