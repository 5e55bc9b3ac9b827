"""The papermill sweep runner (pfode.sweep) and the metrics recorder (pfode.record).

Each test writes a tiny jupytext notebook into tmp_path whose parameters cell takes a and b
and records y = a * b (closed form), and runs it through the runner with one kernel thread.
"""
import csv
import json
import os
import shutil
import textwrap

import pytest

from pfode import record, sweep

HEADER = """\
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""

NOTEBOOK = HEADER + textwrap.dedent('''\

    # %% tags=["parameters"]
    a = 1
    b = 2.0
    fail_at = -1        # raise for this value of a (simulates a crash mid-point)
    counter = ""        # file that gets one line per execution
    done = ""           # file that gets one line per execution run to its end
    sleep = 0.0         # seconds to wait before recording (a point to kill in the middle of)

    # %%
    # pfode.record loaded from its file: importing the package would import torch in every
    # kernel and triple the time of these tests
    import importlib.util
    spec = importlib.util.spec_from_file_location("record", RECORD_PY)
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    if counter:
        with open(counter, "a") as f:
            f.write(f"{a},{b}\\n")
    if a == fail_at:
        import sys
        print(f"fd 2 of the kernel at a={a}", file=sys.__stderr__, flush=True)
        raise RuntimeError(f"boom at a={a}")
    import time
    time.sleep(sleep)
    import os
    env = ";".join(f"{k}={os.environ.get(k, '-')}" for k in ENV_KEYS)   # what the kernel saw
    record.save_metrics([{"y": a * b, "row": 0, "env": env}, {"y": -a * b, "row": 1, "env": env}])
    if done:
        with open(done, "a") as f:
            f.write(f"{a},{b}\\n")
''').replace("RECORD_PY", repr(record.__file__)).replace("ENV_KEYS", repr(
    ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PFODE_THREADS",
     "MALLOC_TRIM_THRESHOLD_")))


def write(path, text):
    path.write_text(text)
    return path


def make_spec(tmp_path, grid=None, parameters=None, extra="", **keys):
    nb = write(tmp_path / "tiny.py", NOTEBOOK)
    spec = {"sweep": "tiny", "notebook": str(nb), "results_dir": str(tmp_path / "results"),
            "parameters": {"counter": str(tmp_path / "count.txt"), **(parameters or {})},
            "grid": grid or {"a": [1, 2, 3], "b": [0.5, 4.0]}, **keys}
    text = json.dumps(spec) + "\n" + extra          # JSON is YAML
    return write(tmp_path / "spec.yml", text)


def read_table(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def runs(tmp_path):
    p = tmp_path / "count.txt"
    return p.read_text().splitlines() if p.exists() else []


@pytest.fixture(autouse=True)
def no_metrics_env(monkeypatch):
    monkeypatch.delenv("PFODE_METRICS", raising=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One 2 x 2 sweep, run once for the module (kernel start-ups dominate the test time)."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec = make_spec(tmp, grid={"a": [1, 3], "b": [0.5, 4.0]})
    return tmp, spec, sweep.run_sweep(spec, threads=1, progress=False, serial=True)


def test_table_matches_closed_form_and_layout(finished):
    tmp, spec, res = finished
    assert len(res.ran) == 4 and not res.failed and not res.skipped
    rows = read_table(res.table)
    assert len(rows) == 8                                    # two metric rows per point
    seen = set()
    for row in rows:
        a, b, y, k = int(row["a"]), float(row["b"]), float(row["y"]), int(row["row"])
        assert y == pytest.approx(a * b * (1 if k == 0 else -1)), row
        seen.add((a, b))
    assert seen == {(a, b) for a in (1, 3) for b in (0.5, 4.0)}
    assert list(rows[0])[:4] == ["point_id", "counter", "a", "b"]
    for p in res.points:                                     # finished folders are complete
        assert sorted(os.listdir(p.directory)) == ["kernel.log", "metrics.json", "params.json", "tiny.ipynb"]
        meta = json.loads((p.directory / "params.json").read_text())
        assert meta["parameters"] == p.parameters and meta["point_id"] == p.id
    assert not list(res.sweep_dir.glob(".tmp-*"))


def test_unknown_parameter_rejected_before_running(tmp_path):
    spec = make_spec(tmp_path, grid={"a": [1], "c": [3]})
    with pytest.raises(sweep.SpecError) as info:
        sweep.run_sweep(spec, threads=1, progress=False, serial=True)
    msg = str(info.value)
    assert "'c'" in msg and "a, b, counter, done, fail_at, sleep" in msg
    assert not (tmp_path / "results").exists()
    assert runs(tmp_path) == []


@pytest.mark.parametrize("text, match", [
    ("sweep: x\nnotebook: nope.py\ngrid: {a: [1]}\n", "notebook not found"),
    ("sweep: x\nnotebook: tiny.py\ngrid: {a: [1]\n", "not valid YAML"),
    ("sweep: x\nnotebook: tiny.py\ngrid: {a: []}\n", "empty"),
    ("sweep: x\nnotebook: tiny.py\n", "no points"),
    ("sweep: x\nnotebook: tiny.py\ngrid: {a: [1]}\ngird: 1\n", "unknown spec key.*'gird'"),
    ("notebook: tiny.py\ngrid: {a: [1]}\n", "missing required key.*sweep"),
    ("sweep: x\nnotebook: tiny.py\ngrid: {a: 1}\n", "must be a list"),
])
def test_bad_specs(tmp_path, text, match):
    write(tmp_path / "tiny.py", NOTEBOOK)
    with pytest.raises(sweep.SpecError, match=match):
        sweep.run_sweep(write(tmp_path / "bad.yml", text), threads=1, progress=False, serial=True)
    assert not (tmp_path / "results").exists()


def test_resume_reruns_only_missing_point(finished):
    tmp, spec, first = finished
    before = runs(tmp)
    victim = first.points[1]
    mtimes = {p.id: (p.directory / "metrics.json").stat().st_mtime_ns for p in first.points}
    shutil.rmtree(victim.directory)
    (first.sweep_dir / f".tmp-{victim.id}-killed").mkdir()     # debris of a killed run
    second = sweep.run_sweep(spec, threads=1, progress=False, serial=True)
    assert second.ran == [victim.id]
    assert sorted(second.skipped) == sorted(p.id for p in first.points if p is not victim)
    a, b = victim.own["a"], victim.own["b"]
    assert runs(tmp) == before + [f"{a},{b}"]                  # only that point executed
    for p in second.points:
        if p.id != victim.id:
            assert (p.directory / "metrics.json").stat().st_mtime_ns == mtimes[p.id]
    assert not list(second.sweep_dir.glob(".tmp-*"))
    assert len(read_table(second.table)) == 8


def test_crash_mid_point_is_not_finished(tmp_path, capsys):
    spec = make_spec(tmp_path, grid={"a": [1, 2]}, parameters={"fail_at": 2})
    with pytest.raises(sweep.SweepError) as info:
        sweep.run_sweep(spec, threads=1, progress=False, serial=True)
    res = info.value.result
    bad = [p for p in res.points if p.own["a"] == 2][0]
    assert list(res.failed) == [bad.id]
    assert bad.id in str(info.value) and "boom at a=2" in str(info.value)
    assert not bad.directory.exists() and not bad.finished
    assert all(p.finished for p in res.points if p is not bad)
    assert (res.sweep_dir / ".failed" / f"{bad.id}.ipynb").exists()
    assert "fd 2 of the kernel at a=2" in (res.sweep_dir / ".failed" / f"{bad.id}.kernel.log").read_text()
    assert {int(r["a"]) for r in read_table(res.table)} == {1}
    assert not list(res.sweep_dir.glob(".tmp-*"))
    # the CLI reports the failure with a non-zero exit status and resumes the failed point only
    assert sweep.main([str(spec), "--threads", "1", "--no-progress", "--serial"]) == 1
    assert "a=2" in capsys.readouterr().err
    assert runs(tmp_path) == ["1,2.0", "2,2.0", "2,2.0"]


def test_point_ids_are_deterministic(tmp_path):
    spec = sweep.load_spec(make_spec(tmp_path))
    ids1 = [p.id for p in sweep.expand_points(spec)]
    ids2 = [p.id for p in sweep.expand_points(sweep.load_spec(spec.path))]
    assert ids1 == ids2 and len(set(ids1)) == 6
    assert ids1[0].startswith("a=1_b=0.5-")
    base = {"a": 1, "b": 0.5}
    assert sweep.point_id({"b": 0.5, "a": 1}) == sweep.point_id(base)   # order-free
    assert sweep.point_id({**base, "c": 1}, base) != sweep.point_id(base, base)
    spec2 = sweep.load_spec(make_spec(tmp_path, parameters={"fail_at": 7}))
    assert not set(ids1) & {p.id for p in sweep.expand_points(spec2)}  # fixed params hashed


def test_dry_run_and_max_points(tmp_path, capsys):
    spec = make_spec(tmp_path, grid={"a": [1, 2, 3]})
    res = sweep.run_sweep(spec, dry_run=True, progress=False)
    assert not res.ran and not (tmp_path / "results").exists()
    out = capsys.readouterr().out
    assert out.count("[run ]") == 3
    res = sweep.run_sweep(spec, max_points=1, threads=1, progress=False, serial=True)
    assert len(res.ran) == 1 and len(read_table(res.table)) == 2
    sweep.run_sweep(spec, dry_run=True, progress=False)
    out = capsys.readouterr().out
    assert out.count("[done]") == 1 and out.count("[run ]") == 2


def test_record_roundtrip_and_validation(tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    p = tmp_path / "m.json"
    rows = record.save_metrics({"x": np.float64(1.5), "k": np.int64(3), "ok": True}, p)
    assert rows == [{"x": 1.5, "k": 3, "ok": True}]
    assert record.load_metrics(p) == rows
    monkeypatch.setenv("PFODE_METRICS", str(tmp_path / "env.json"))
    record.save_metrics([{"a": 1}, {"a": float("nan")}])
    back = record.load_metrics(tmp_path / "env.json")
    assert back[0] == {"a": 1} and back[1]["a"] != back[1]["a"]
    monkeypatch.delenv("PFODE_METRICS")
    assert record.save_metrics({"a": 2}) == [{"a": 2}]        # no path: nothing written
    with pytest.raises(TypeError, match="'v'"):
        record.save_metrics({"v": [1, 2]}, p)
    with pytest.raises(ValueError):
        record.save_metrics([], p)


def test_wrong_type_rejected_before_running(tmp_path):
    """A value of another type than the notebook's default stops the spec before any point runs
    (papermill would pass it on and the notebook would fail cells later)."""
    spec = make_spec(tmp_path, grid={"a": [1, "two"]})
    with pytest.raises(sweep.SpecError, match=r"parameter 'a' must be an int like its default 1, got a str 'two'"):
        sweep.run_sweep(spec, progress=False, threads=1, serial=True)
    assert runs(tmp_path) == [] and not (tmp_path / "results" / "tiny").exists()
    spec = make_spec(tmp_path, grid={"a": [1]}, parameters={"b": [2.0]})   # b: a float, not a list
    with pytest.raises(sweep.SpecError, match="parameter 'b' must be a float"):
        sweep.run_sweep(spec, progress=False, threads=1, serial=True)
    # an int where the default is a float is fine (2 is a float value); a bool is not an int
    spec = make_spec(tmp_path, grid={"a": [True]})
    with pytest.raises(sweep.SpecError, match="must be an int"):
        sweep.run_sweep(spec, progress=False, threads=1, serial=True)


def test_points_record_their_runtime_and_resume_warns_when_it_changes(finished, capsys):
    _, spec, res = finished
    meta = json.loads((res.points[0].directory / "params.json").read_text())
    rt = meta["runtime"]
    assert rt["threads"] == 1 and rt["cpu"] and rt["torch"]
    rows = read_table(res.table)
    assert {r["run_threads"] for r in rows} == {"1"}
    # a point computed elsewhere: the resumed run names it
    other = res.points[1].directory / "params.json"
    m = json.loads(other.read_text())
    m["runtime"]["cpu"] = "Some Other CPU"
    other.write_text(json.dumps(m))
    shutil.rmtree(res.points[2].directory)                # one point left to run
    capsys.readouterr()
    sweep.run_sweep(spec, progress=False, threads=1, serial=True)
    out = capsys.readouterr().out
    assert "1 finished point(s)" in out and res.points[1].id in out and "Some Other CPU" in out
    assert res.points[0].id not in out.split("warning")[1].split("sweep tiny")[0]


# ---- on Dask: a real LocalCluster of two worker processes ------------------------------------
def _table_values(path):
    """The rows' parameters a, b and metrics row, y, env, as a set (the order of completion
    varies)."""
    return {(r["a"], r["b"], r["row"], r["y"], r["env"]) for r in read_table(path)}


def test_local_cluster_equals_serial(tmp_path):
    pytest.importorskip("distributed")
    serial_dir, dask_dir = tmp_path / "serial", tmp_path / "dask"
    for d in (serial_dir, dask_dir):
        d.mkdir()
    a = sweep.run_sweep(make_spec(serial_dir, grid={"a": [1, 2], "b": [0.5, 4.0]}), threads=1,
                        progress=False, serial=True)
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")
    before = {k: os.environ.get(k) for k in keys}
    b = sweep.run_sweep(make_spec(dask_dir, grid={"a": [1, 2], "b": [0.5, 4.0]}), threads=1,
                        progress=False, workers=2)
    assert len(a.ran) == len(b.ran) == 4 and not b.failed
    # the same numbers (the counter file's path, and so the ids, differ between the two)
    assert _table_values(a.table) == _table_values(b.table)
    # the kernel's thread counts are the point's, its malloc setting the driver's (a Dask
    # nanny sets MALLOC_TRIM_THRESHOLD_=65536 and the thread counts to 1 for its workers)
    want = (f"OMP_NUM_THREADS=1;MKL_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;PFODE_THREADS=1;"
            f"MALLOC_TRIM_THRESHOLD_={os.environ.get('MALLOC_TRIM_THRESHOLD_', '-')}")
    assert {r["env"] for r in read_table(b.table)} == {want}
    assert {k: os.environ.get(k) for k in keys} == before    # and this process's are unchanged
    assert sorted(runs(dask_dir)) == sorted(runs(serial_dir))      # each point executed once
    assert not list(b.sweep_dir.glob(".tmp-*"))


def test_a_worker_killed_mid_point_loses_nothing(tmp_path):
    """SIGKILL the worker process running a point while its notebook sleeps: the scheduler gives
    the point to another worker, every point finishes exactly once, no half-written folder is
    left, and the table is that of a clean run."""
    distributed = pytest.importorskip("distributed")
    import signal
    import threading
    import time

    grid = {"a": [1, 2, 3], "b": [0.5]}
    done = tmp_path / "done.txt"
    spec = make_spec(tmp_path, grid=grid, parameters={"sleep": 4.0, "done": str(done)})
    cluster = sweep.local_cluster(workers=2, threads=1)
    killed = []

    def kill_one():
        """Wait until a notebook has started (its line in the counter file; it then sleeps 4 s),
        and SIGKILL the worker process whose task is that point."""
        with distributed.Client(cluster) as client:
            deadline = time.time() + 60
            while time.time() < deadline and not killed:
                started = runs(tmp_path)
                if started:
                    a, b = started[0].split(",")
                    slug = f"a={a}_b={b}-"
                    for w, keys in client.processing().items():
                        if any(slug in str(k) for k in keys):
                            pid = client.run(os.getpid, workers=[w])[w]
                            os.kill(pid, signal.SIGKILL)
                            killed.append(started[0])
                time.sleep(0.1)

    try:
        th = threading.Thread(target=kill_one)
        th.start()
        res = sweep.run_sweep(spec, threads=1, progress=False, scheduler=cluster.scheduler_address)
        th.join()
    finally:
        cluster.close()
    assert killed, "no worker was busy to kill"
    assert len(res.ran) == 3 and not res.failed
    assert sorted(done.read_text().splitlines()) == ["1,0.5", "2,0.5", "3,0.5"]   # each once
    assert sorted(runs(tmp_path)) == sorted(["1,0.5", "2,0.5", "3,0.5", killed[0]])  # the killed one twice
    assert not list(res.sweep_dir.glob(".tmp-*"))
    clean = tmp_path / "clean"
    clean.mkdir()
    ref = sweep.run_sweep(make_spec(clean, grid=grid), threads=1, progress=False, serial=True)
    assert _table_values(res.table) == _table_values(ref.table)


def test_dask_errors_come_before_any_point_runs(tmp_path):
    pytest.importorskip("distributed")
    spec = make_spec(tmp_path, grid={"a": [1]})
    with pytest.raises(sweep.SpecError, match="no Dask scheduler answers at 'tcp://127.0.0.1:9'"):
        sweep.run_sweep(spec, threads=1, progress=False, scheduler="tcp://127.0.0.1:9")
    with pytest.raises(sweep.SpecError, match="serial runs in this process"):
        sweep.run_sweep(spec, serial=True, workers=2, progress=False)
    with pytest.raises(sweep.SpecError, match="workers must be a positive integer"):
        sweep.run_sweep(spec, workers=0, progress=False)
    bad = make_spec(tmp_path, grid={"a": [1]}, resources={"threads": 0})
    with pytest.raises(sweep.SpecError, match="resources.threads must be an integer >= 1"):
        sweep.run_sweep(bad, progress=False, workers=1)
    bad = make_spec(tmp_path, grid={"a": [1]}, resources={"cpus": 2})
    with pytest.raises(sweep.SpecError, match="resources must be a mapping"):
        sweep.run_sweep(bad, progress=False, workers=1)
    assert runs(tmp_path) == []                       # nothing ran


def test_a_second_driver_is_refused(tmp_path):
    """Two drivers on one sweep: the second stops at once, naming the first, and changes nothing."""
    import subprocess
    import sys
    spec = make_spec(tmp_path, grid={"a": [1]})
    sweep_dir = tmp_path / "results" / "tiny"
    sweep_dir.mkdir(parents=True)
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (sweep_dir / ".lock").write_text(str(first.pid))
        with pytest.raises(sweep.SweepError, match=f"being run by process {first.pid}"):
            sweep.run_sweep(spec, threads=1, progress=False, serial=True)
        assert runs(tmp_path) == [] and (sweep_dir / ".lock").read_text() == str(first.pid)
    finally:
        first.kill()
        first.wait()
    res = sweep.run_sweep(spec, threads=1, progress=False, serial=True)   # a dead driver's lock
    assert len(res.ran) == 1 and not (sweep_dir / ".lock").exists()


def test_write_table_cells(tmp_path):
    """The table's cells read back as what was recorded: floats exactly (shortest repr), NaN
    as ``nan``, a list parameter as JSON, a metric a point does not record as an empty cell;
    columns point_id, parameters (first seen), metrics (first seen), run_*; a metric that
    contradicts its parameter is refused."""
    pts = []
    for i, (params, rows) in enumerate([
            ({"a": 1, "w": [1, 2]}, [{"y": 0.1 + 0.2, "ok": True}, {"y": float("nan")}]),
            ({"a": 2, "w": [3], "c": "x"}, [{"z": 1e-300, "a": 2}])]):
        d = tmp_path / f"p{i}"
        d.mkdir()
        record.save_metrics(rows, d / "metrics.json")
        (d / "params.json").write_text(json.dumps({"runtime": {"threads": 1, "cpu": "c"}}))
        pts.append(sweep.Point(f"p{i}", params, params, d))
    pts.append(sweep.Point("p9", {"a": 9}, {"a": 9}, tmp_path / "p9"))      # not finished
    path = sweep.write_table(tmp_path, pts)
    with open(path) as f:
        header = next(csv.reader(f))
    assert header == ["point_id", "a", "w", "c", "y", "ok", "z", "run_threads", "run_cpu", "run_torch"]
    t = read_table(path)
    assert [r["point_id"] for r in t] == ["p0", "p0", "p1"]
    assert float(t[0]["y"]) == 0.1 + 0.2 and t[0]["ok"] == "True" and t[0]["z"] == ""
    assert t[1]["y"] == "nan" and t[1]["ok"] == ""
    assert json.loads(t[0]["w"]) == [1, 2] and t[0]["c"] == "" and t[2]["c"] == "x"
    assert float(t[2]["z"]) == 1e-300 and t[2]["a"] == "2"
    assert t[0]["run_threads"] == "1" and t[0]["run_cpu"] == "c" and t[0]["run_torch"] == ""
    record.save_metrics([{"a": 3}], tmp_path / "p1" / "metrics.json")
    with pytest.raises(sweep.SweepError, match="metric 'a' = 3 clashes with the parameter a = 2"):
        sweep.write_table(tmp_path, pts)
    assert read_table(path) == t                              # the old table is kept


def test_core_does_not_import_dask():
    """Dask is the [sweep] extra: the library, and the runner until it runs on Dask, work
    without it."""
    import subprocess
    import sys
    code = ("import sys, pfode, pfode.sweep; "
            "print(sorted(m for m in ('distributed', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
