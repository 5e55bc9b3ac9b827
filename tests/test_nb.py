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


def test_publish_glues_figure_and_caption_values(tmp_path, monkeypatch):
    """publish saves the PNG, glues the figure and each caption value (as myst-nb reads them
    back: the text/plain of a display with the glue key in its metadata), and closes the
    figure so the cell does not draw it twice."""
    from myst_nb.ext import glue     # the book extra, which make venv installs

    shown = []
    monkeypatch.setattr(glue, "ipy_display", lambda obj, **kw: shown.append((obj, kw)))
    monkeypatch.setenv("PFODE_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = nb.publish(fig, "ch0_line", "fig-ch0-line", K=256, s=0.05, method="rk4")
    assert path == tmp_path / "ch0_line.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert not plt.fignum_exists(fig.number)
    keys = [kw["metadata"]["scrapbook"]["name"] for _, kw in shown]
    assert keys == ["fig-ch0-line-K", "fig-ch0-line-s", "fig-ch0-line-method", "fig-ch0-line"]
    texts = [obj[glue.GLUE_PREFIX + "text/plain"] for obj, _ in shown[:3]]
    assert texts == ["'256'", "'0.05'", "'rk4'"]
    with pytest.raises(ValueError, match="identifiers"):
        nb.publish(fig, "x", "fig-x", **{"a-b": 1})


# ---- parameters: the type rule and the check of papermill's injected cell --------------------
@pytest.mark.parametrize("value, default", [(3, 1), (2.5, 1.0), (2, 1.0), (True, False), ("b", "a"),
                                            ([1, 2], [3]), ((1, 2), [3]), ({"k": 1}, {}),
                                            ("anything", None), ([], [1]), ([[1.0, 2.0]], [[0.0, 1.0]])])
def test_check_parameter_accepts(value, default):
    nb.check_parameter("p", value, default)


@pytest.mark.parametrize("value, default, match", [
    (2.5, 1, "must be an int"), (True, 1, "must be an int"), ("3", 1, "must be an int"),
    (None, 1, "must be an int"), (True, 1.0, "must be a float"), ("abc", [1, 2], "must be a list"),
    (["a"], [1, 2], r"p\[0\]' must be an int"), ([1, 2.5], [1, 2], r"p\[1\]' must be an int"),
    (1, "a", "must be a str"), (1, True, "must be a bool"), ([1], {"a": 1}, "must be a dict")])
def test_check_parameter_rejects(value, default, match):
    with pytest.raises(TypeError, match=match):
        nb.check_parameter("p", value, default)
    with pytest.raises(ValueError, match="NaN"):
        nb.check_parameter("p", float("nan"), 1.0)


PARAMS = "steps = 100          # a comment with = in it\ngrid = [10, 20]\nname = 'a'\ntol = 1e-3\n"


def test_check_injected_reads_the_history():
    # no injected cell (the book build, nbval): nothing to check
    assert nb.check_injected({}, ["", PARAMS, "import pfode.nb"]) == []
    ns = {"steps": 7, "grid": [1, 2], "tol": 1}
    hist = ["", PARAMS, "# Parameters\nsteps = 7\ngrid = [1, 2]\ntol = 1\n", "run = start()"]
    assert nb.check_injected(ns, hist) == ["steps", "grid", "tol"]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'nonsense'.*grid, name, steps, tol"):
        nb.check_injected({"nonsense": 3}, ["", PARAMS, "# Parameters\nnonsense = 3\n", ""])
    with pytest.raises(TypeError, match="parameter 'grid' must be a list like its default"):
        nb.check_injected({"grid": "abc"}, ["", PARAMS, '# Parameters\ngrid = "abc"\n', ""])


def test_start_sets_threads_from_the_environment(monkeypatch):
    import torch
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("PFODE_THREADS", raising=False)
        run = nb.start({})
        assert run.threads == 1 and torch.get_num_threads() == 1 and run.injected == ()
        monkeypatch.setenv("PFODE_THREADS", "2")
        assert nb.start({}).threads == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("PFODE_THREADS", "two")
        with pytest.raises(ValueError, match="PFODE_THREADS"):
            nb.start({})
        with pytest.raises(TypeError, match="threads must be an integer"):
            nb.set_threads(1.5)
    finally:
        torch.set_num_threads(before)


def test_smoke_figures_never_go_to_the_books_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PFODE_ROOT", str(tmp_path))
    monkeypatch.delenv("PFODE_FIGURES", raising=False)
    monkeypatch.setenv("PFODE_SMOKE", "1")
    assert nb.figure_dir() == tmp_path / "_build" / "nbval" / "figures"
    monkeypatch.setenv("PFODE_SMOKE", "")
    assert nb.figure_dir() == tmp_path / "_build" / "figures"


def test_papermill_parameters_are_checked_in_the_notebook(tmp_path):
    """End to end: papermill injects the parameters, the first cell after them stops an unknown
    name or a wrong type at once, naming the parameter (papermill alone only warns)."""
    import jupytext
    import nbformat
    import papermill

    src = ('# %% tags=["parameters"]\nsteps = 100\ngrid = [10, 20]\n\n'
           '# %%\nimport pfode.nb\nrun = pfode.nb.start(globals())\nresult = steps * len(grid)\n')
    nb_ = jupytext.reads(src, fmt="py:percent")
    nb_.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    path = tmp_path / "t.ipynb"
    nbformat.write(nb_, path)
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(path), str(out), parameters={"steps": 5}, progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown parameter\(s\) 'nonsense'"):
        papermill.execute_notebook(str(path), str(out), parameters={"nonsense": 3}, progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match=r"parameter 'grid' must be a list"):
        papermill.execute_notebook(str(path), str(out), parameters={"grid": "abc"}, progress_bar=False)


def test_setup_shrinks_parameters_only_in_smoke_mode(monkeypatch):
    import numpy as np
    import torch
    before = torch.get_num_threads()
    rules = dict(num=10, big=10**6, steps=lambda v: [s for s in v if s <= 50], h=lambda v: max(v, 0.5),
                 name="small", out=lambda _: "tmp")
    try:
        for smoke, expected in ((False, dict(num=400, big=7, steps=[10, 50, 200], h=0.1, name="full", out="w")),
                                (True, dict(num=10, big=7, steps=[10, 50], h=0.5, name="small", out="tmp"))):
            monkeypatch.setenv("PFODE_SMOKE", "1" if smoke else "")
            ns = dict(num=400, big=7, steps=[10, 50, 200], h=0.1, name="full", out="w", seed=3)
            run = nb.setup(ns, smoke=rules)
            assert {k: ns[k] for k in expected} == expected     # a number is a cap: 7 stays 7
            assert run.smoke is smoke and set(run.overridden) == (set(rules) if smoke else set())
            # the generators are those seeded with the notebook's seed
            assert run.seed == 3
            assert torch.equal(torch.randn(5, generator=run.gen, dtype=torch.float64),
                               torch.randn(5, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
            assert run.rng.random() == np.random.default_rng(3).random()
        with pytest.raises(KeyError, match="nmu"):
            nb.setup(dict(num=1), smoke=dict(nmu=2))
        with pytest.raises(TypeError, match="seed must be an integer"):
            nb.setup(dict(seed=1.5))
        assert nb.setup({}).gen is None                            # no seed, no generators
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("lo, hi, at_least", [(0.2, 0.9, 2), (0.3, 8.0, 3), (1e-3, 1e3, 3)])
def test_log_axes_labels_at_least_two_ticks(lo, hi, at_least):
    """Over any range the axes carry at least two labelled major ticks inside the limits
    (matplotlib's default has none between 0.2 and 0.9)."""
    fig, ax = plt.subplots()
    ax.plot([lo, hi], [lo, hi])
    ax.set(xlim=(lo, hi), ylim=(lo, hi))
    nb.log_axes(ax)
    fig.canvas.draw()
    for axis in (ax.xaxis, ax.yaxis):
        ticks = [t for t in axis.get_major_ticks()
                 if lo <= t.get_loc() <= hi and t.label1.get_text()]
        assert len(ticks) >= at_least
    plt.close(fig)


def test_check_quoted_admits_one_unit_of_the_last_digit():
    """A page's rounded number holds against the run within one unit of its last printed
    digit (a value at a rounding boundary may round either way), and fails beyond it."""
    assert nb.check_quoted({
        "interval": ("0.129 [0.124, 0.132]", "0.128 [0.124, 0.133]"),   # one unit off: admitted
        "tuple": (("2.47", "17"), ("2.46", "18")),
        "exponent": ("7.5e-12", "7.4e-12"),
        "count": (41, 41),
    }) == 4
    for computed, quoted in [("0.130", "0.128"), ("2e-04", "4e-04"), ("212", "214"),
                             ("0.12 [0.1, 0.2]", "0.12"), ("-0.35", "0.35")]:
        with pytest.raises(AssertionError, match="page quotes"):
            nb.check_quoted({"x": (computed, quoted)})
