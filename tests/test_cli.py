"""The ``sigmax`` command, in-process through ``main([...])`` and as a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sigmax.cli import main

SUBCOMMANDS = ("compare", "fit", "predict", "plot", "bench")


def _run(*args: str, cwd: Path | None = None, exe: str | None = None, timeout: float = 120):
    cmd = [exe] if exe else [sys.executable, "-m", "sigmax"]
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env
    )


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "expected an error message on stderr"
    assert lines[-1].startswith("sigmax: error: "), err
    assert "Traceback" not in err
    return lines[-1]


@pytest.fixture
def table(tmp_path) -> Path:
    """A small multi-class CSV with a categorical feature and a multi-label block."""
    rng = np.random.default_rng(0)
    n = 90
    y = np.repeat([0, 1, 2], n // 3)
    X = rng.standard_normal((n, 3)) + y[:, None]
    colour = np.where(rng.uniform(size=n) < 0.5, "red", "blue")
    L = np.column_stack([y == 0, y >= 1, (y == 2) | (X[:, 0] > 1)]).astype(int)
    p = tmp_path / "data.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x1", "x2", "x3", "colour", "kind", "binary", "l1", "l2", "l3"])
        for i in range(n):
            w.writerow([*X[i].round(6), colour[i], f"k{y[i]}", int(y[i] == 2), *L[i]])
    return p


# --------------------------------------------------------------------------- usage


def test_version_and_help(capsys):
    from sigmax import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sigmax {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in SUBCOMMANDS)
    for cmd in SUBCOMMANDS:
        assert main([cmd, "--help"]) == 0
        assert f"usage: sigmax {cmd}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["compare", "--cv", "x"],
        ["compare", "--cv", "0"],
        ["compare", "--C", "-1"],
        ["fit", "d.csv", "--target", "y", "-o", "m"],  # no --head
        ["fit", "d.csv", "--target", "y", "--head", "tanh", "-o", "m"],
        ["plot", "histogram"],
        ["predict", "model.sigmax"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage: sigmax" in capsys.readouterr().err


# --------------------------------------------------------------------------- compare


def test_compare_bundled_quick_in_process(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["compare", "--quick", "--cv", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("breast_cancer", "digits", "yeast", "accuracy", "Report:"):
        assert name in printed
    html = (out / "report.html").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) >= 8
    assert html.count('src="data:image/png;base64,') == len(pngs)
    doc = json.loads((out / "results.json").read_text())
    assert [t["task"] for t in doc["tasks"]] == ["binary", "multiclass", "multilabel"]
    assert doc["estimators"].startswith("sigmax.estimators")
    assert doc["verdict"] in printed.replace("\n", " ") or doc["verdict"][:40] in printed
    assert (out / "report.md").read_text().startswith("# sigmax compare")


@pytest.mark.parametrize(
    ("target", "task"),
    [(["binary"], "binary"), (["kind"], "multiclass"), (["l1", "l2", "l3"], "multilabel")],
)
def test_compare_csv_infers_task(table, tmp_path, capsys, target, task):
    out = tmp_path / f"rep-{task}"
    code = main(["compare", str(table), "--target", *target, "--cv", "2", "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert f"inferred task: {task}" in err
    assert "one-hot encoded non-numeric feature columns: colour (2 levels)" in err
    doc = json.loads((out / "results.json").read_text())
    assert doc["tasks"][0]["task"] == task


def test_compare_subprocess_and_console_script(table, tmp_path):
    done = _run("compare", str(table), "--target", "kind", "--cv", "2", "--out", "r", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sigmoid head vs softmax head" in done.stdout
    assert "inferred task: multiclass" in done.stderr
    assert (tmp_path / "r" / "report.html").exists()
    exe = shutil.which("sigmax") or (
        str(Path(sys.executable).with_name("sigmax"))
        if Path(sys.executable).with_name("sigmax").exists()
        else None
    )
    if exe is None:
        pytest.skip("the sigmax console script is not installed")
    done = _run("--version", exe=exe)
    assert done.returncode == 0
    assert done.stdout.startswith("sigmax ")
    done = _run("compare", "no-such.csv", exe=exe)
    assert done.returncode == 1
    assert _one_line_error(done.stderr) == "sigmax: error: no such file: no-such.csv"


@pytest.mark.slow
def test_default_compare_end_to_end(tmp_path):
    """The README's first command, exactly: no arguments, report in ./sigmax-report."""
    exe = shutil.which("sigmax")
    done = _run("compare", cwd=tmp_path, exe=exe, timeout=300)
    assert done.returncode == 0, done.stderr
    rep = tmp_path / "sigmax-report"
    doc = json.loads((rep / "results.json").read_text())
    assert [t["name"] for t in doc["tasks"]] == ["breast_cancer", "digits", "yeast"]
    assert all(t["cv"].startswith("5-fold") for t in doc["tasks"])
    assert doc["tasks"][0]["binary"]["conversion_max_abs_diff"] < 1e-12
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list(rep.glob("*.png")))
    assert [p.name for p in tmp_path.iterdir()] == ["sigmax-report"]


# --------------------------------------------------------------------------- fit / predict


def test_fit_predict_round_trip_matches_logistic_regression(table, tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    from sigmax.datasets import load_table

    model = tmp_path / "m.sigmax"
    argv = ["fit", str(table), "--target", "binary", "--head", "softmax", "-o", str(model)]
    assert main(argv) == 0
    assert "saved to" in capsys.readouterr().out
    assert main(["predict", str(model), str(table)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["prediction", "p_0", "p_1"]
    p1 = np.array([float(r["p_1"]) for r in rows])

    # Independent reference: sklearn on the same standardized features. The symmetric
    # softmax with C equals a sigmoid (LogisticRegression) with 2C.
    ds = load_table(table, ["binary"])
    X = (ds.X - ds.X.mean(0)) / ds.X.std(0)
    ref = LogisticRegression(C=2.0, tol=1e-10, max_iter=10_000).fit(X, ds.y)
    np.testing.assert_allclose(p1, ref.predict_proba(X)[:, 1], atol=2e-3)
    pred = np.array([int(r["prediction"]) for r in rows])
    np.testing.assert_array_equal(pred, (p1 > 0.5).astype(int))

    out = tmp_path / "preds.csv"
    assert main(["predict", str(model), str(table), "-o", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "prediction,p_0,p_1"


def test_fit_predict_multiclass_and_multilabel_and_mlp(table, tmp_path, capsys):
    m = tmp_path / "mc.sigmax"
    assert main(["fit", str(table), "--target", "kind", "--head", "sigmoid", "-o", str(m)]) == 0
    capsys.readouterr()
    assert main(["predict", str(m), str(table)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["prediction", "p_k0", "p_k1", "p_k2"]
    assert {r["prediction"] for r in rows} <= {"k0", "k1", "k2"}
    np.testing.assert_allclose([sum(float(r[f"p_k{i}"]) for i in range(3)) for r in rows], 1.0)

    m = tmp_path / "ml.sigmax"
    argv = ["fit", str(table), "--target", "l1", "l2", "l3", "--head", "sigmoid", "-o", str(m)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["predict", str(m), str(table)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == "pred_l1,pred_l2,pred_l3,p_l1,p_l2,p_l3"

    pytest.importorskip("sigmax.estimators.mlp")
    m = tmp_path / "mlp.sigmax"
    argv = ["fit", str(table), "--target", "kind", "--head", "softmax", "--model", "mlp"]
    assert main([*argv, "-o", str(m)]) == 0
    capsys.readouterr()
    assert main(["predict", str(m), str(table)]) == 0
    assert capsys.readouterr().out.startswith("prediction,p_k0,p_k1,p_k2")


def test_softmax_on_multilabel_target_is_refused(table, tmp_path, capsys):
    argv = [
        "fit",
        str(table),
        "--target",
        "l1",
        "l2",
        "--head",
        "softmax",
        "-o",
        str(tmp_path / "m"),
    ]
    assert main(argv) == 1
    assert "use --head sigmoid" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------------- bad input


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, list[str], str]]:
    def w(name: str, text: str | bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return p

    return {
        "missing": (tmp_path / "nope.csv", ["--target", "y"], "no such file"),
        "binary": (w("junk.csv", bytes(range(256)) * 4), ["--target", "y"], "not a CSV text file"),
        "ragged": (w("r.csv", "a,b,y\n1,2,0\n3,4,1\n5,6\n"), ["--target", "y"], "line 4"),
        "target": (
            w("t.csv", "a,b,y\n1,2,0\n3,4,1\n"),
            ["--target", "label"],
            "'label' not found in t.csv; columns are: a, b, y",
        ),
        "nonnumeric": (
            w("s.csv", "a,name,y\n" + "".join(f"{i},n{i},{i % 2}\n" for i in range(80))),
            ["--target", "y"],
            "'name' is not numeric and has 80 distinct values",
        ),
        "nan": (
            w("n.csv", "a,b,y\n1,nan,0\ninf,2,1\n3,4,0\n5,,1\n"),
            ["--target", "y"],
            "2 NaN/missing and 1 inf values, in columns: a (1), b (2)",
        ),
        "one_class": (
            w("o.csv", "a,b,y\n1,2,1\n3,4,1\n"),
            ["--target", "y"],
            "single class ('1')",
        ),
    }


@pytest.mark.parametrize(
    "case", ["missing", "binary", "ragged", "target", "nonnumeric", "nan", "one_class"]
)
@pytest.mark.parametrize("cmd", ["compare", "fit"])
def test_bad_input_gives_one_line_and_exit_1(case, cmd, tmp_path, capsys):
    path, extra, message = _bad_files(tmp_path)[case]
    out = tmp_path / "out"
    if cmd == "compare":
        argv = ["compare", str(path), *extra, "--out", str(out)]
    else:
        argv = ["fit", str(path), *extra, "--head", "sigmoid", "-o", str(out)]
    assert main(argv) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert message in line
    assert not out.exists()  # nothing half-written


def test_bad_input_subprocess_has_no_traceback_unless_debug(tmp_path):
    (tmp_path / "r.csv").write_text("a,b,y\n1,2,0\n3,4\n")
    done = _run("compare", "r.csv", "--out", "rep", cwd=tmp_path)
    assert done.returncode == 1
    assert "r.csv line 3: expected 3 fields" in _one_line_error(done.stderr)
    assert done.stderr.count("\n") == 1
    for argv in (["--debug", "compare", "r.csv"], ["compare", "r.csv", "--debug"]):
        done = _run(*argv, cwd=tmp_path)
        assert done.returncode == 1
        assert "Traceback" in done.stderr
        assert "DataError" in done.stderr
    assert not (tmp_path / "rep").exists()


def test_unwritable_output_folder(table, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["compare", str(table), "--out", str(blocker / "rep")]) == 1
    assert "is a file, not a folder" in _one_line_error(capsys.readouterr().err)
    argv = ["fit", str(table), "--target", "kind", "--head", "sigmoid"]
    assert main([*argv, "-o", str(tmp_path / "no" / "m.sigmax")]) == 1
    assert "cannot write to" in _one_line_error(capsys.readouterr().err)
    assert main(["plot", "sigmoid", "--out", str(blocker / "p.png")]) == 1
    _one_line_error(capsys.readouterr().err)
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert main(["compare", str(table), "--out", str(ro / "rep")]) == 1
            assert "cannot write to" in _one_line_error(capsys.readouterr().err)
        finally:
            ro.chmod(0o700)


def test_failed_run_keeps_previous_report(table, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["compare", str(table), "--target", "binary", "--cv", "2", "--out", str(out)]) == 0
    before = (out / "results.json").read_text()
    (tmp_path / "bad.csv").write_text("a,y\n1,0\n2\n")
    assert main(["compare", str(tmp_path / "bad.csv"), "--out", str(out)]) == 1
    assert (out / "results.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "data.csv", "rep"]


def test_corrupt_model_files(table, tmp_path, capsys):
    good = tmp_path / "m.sigmax"
    argv = ["fit", str(table), "--target", "binary", "--head", "sigmoid", "-o", str(good)]
    assert main(argv) == 0
    capsys.readouterr()
    data = good.read_bytes()
    cases = {
        "garbage.sigmax": (b"not a model at all", "not a readable sigmax model file"),
        "truncated.sigmax": (data[: len(data) // 2], "not a readable sigmax model file"),
        "empty.sigmax": (b"", "not a readable sigmax model file"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("sigmax-cli.json", json.dumps({"format": "other"}))
        z.writestr("model.npz", b"")
    cases["foreign.sigmax"] = (buf.getvalue(), "not a model file written by 'sigmax fit'")
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as z:
        z.writestr("sigmax-cli.json", src.read("sigmax-cli.json"))
        z.writestr("model.npz", b"PK\x03\x04 broken npz")
    cases["badinner.sigmax"] = (buf.getvalue(), "m")
    for name, (blob, message) in cases.items():
        (tmp_path / name).write_bytes(blob)
        assert main(["predict", str(tmp_path / name), str(table)]) == 1, name
        assert message in _one_line_error(capsys.readouterr().err), name
    assert main(["predict", str(tmp_path / "absent.sigmax"), str(table)]) == 1
    assert "no such model file" in _one_line_error(capsys.readouterr().err)
    (tmp_path / "few.csv").write_text("x1,x2\n1,2\n")
    assert main(["predict", str(good), str(tmp_path / "few.csv")]) == 1
    assert "lacks feature column(s) 'x3', 'colour'" in _one_line_error(capsys.readouterr().err)


# --------------------------------------------------------------------------- plot and bench


@pytest.mark.parametrize("kind", ["sigmoid", "softmax", "calibration", "ovr-sums", "regions"])
def test_plot_kinds(kind, table, tmp_path, capsys):
    out = tmp_path / f"{kind}.png"
    data = [] if kind in ("sigmoid", "softmax") else [str(table), "--target", "kind"]
    assert main(["plot", kind, *data, "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.glob("*.png")] == [out.name]


def test_plot_wrong_task(table, tmp_path, capsys):
    argv = ["plot", "ovr-sums", str(table), "--target", "binary", "--out", str(tmp_path / "p.png")]
    assert main(argv) == 1
    assert "needs a multi-class target" in _one_line_error(capsys.readouterr().err)


def test_bench_prints_ratios(monkeypatch, capsys):
    from sigmax.report import bench

    real = bench.run_builtin
    monkeypatch.setattr(bench, "run_builtin", lambda quick: real(quick=quick, shape=(30, 10)))
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "ratio" in out
    assert "scipy.special" in out
    assert "logsumexp" in out


def test_bench_suite_runs_scripts_with_quick(tmp_path, capfd):
    (tmp_path / "bench_ok.py").write_text(
        "import sys\nprint('quick' if '--quick' in sys.argv else 'full')\n"
    )
    assert main(["bench", "--suite", str(tmp_path)]) == 0
    assert "quick" in capfd.readouterr().out
    (tmp_path / "bench_bad.py").write_text("raise SystemExit(3)\n")
    assert main(["bench", "--suite", str(tmp_path)]) == 1
    assert "bench_bad.py exited with 3" in capfd.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["bench", "--suite", str(empty)]) == 1
    assert "no bench_*.py scripts" in _one_line_error(capfd.readouterr().err)


def test_compare_many_classes_compares_full_and_sampled_heads(tmp_path, capsys):
    """More than 1,000 classes: the report compares the full softmax with the sampled heads
    on a holdout (time, top-1, top-5, log-loss) and the verdict reads those numbers."""
    rng = np.random.default_rng(0)
    k, per, d = 1200, 3, 6
    y = np.repeat(np.arange(k), per)
    X = rng.standard_normal((k, d))[y] * 2 + rng.standard_normal((y.size, d)) * 0.5
    p = tmp_path / "many.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*(f"x{j}" for j in range(d)), "label"])
        for i in range(y.size):
            w.writerow([*X[i].round(5), f"c{y[i]:04d}"])
    out = tmp_path / "rep"
    assert main(["compare", str(p), "--target", "label", "--cv", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    (task,) = doc["tasks"]
    assert task["n_classes"] == k
    assert task["task"] == "multiclass"
    mc = task["many_classes"]
    assert set(mc["heads"]) == {"full softmax", "sampled softmax", "negative sampling"}
    assert mc["n_train"] + mc["n_test"] == y.size
    assert mc["n_test"] == y.size // 5
    assert mc["epochs"] >= 10
    assert mc["notes"] == []
    for label, h in mc["heads"].items():
        assert h["epochs"] == mc["epochs"]
        assert 0.0 <= h["top1_accuracy"] <= h["top5_accuracy"] <= 1.0
        assert h["fit_time_s"] > 0
        assert 0.0 < h["log_loss"] < np.log(k) + 1.0
        assert f"{label}: fit " in printed
    full, samp = mc["heads"]["full softmax"], mc["heads"]["sampled softmax"]
    # 1,200 well separated classes: both heads learn far beyond chance (5 / 1200 for top-5).
    assert full["top5_accuracy"] > 0.2
    assert samp["top5_accuracy"] > 0.2
    assert f"{samp['top5_accuracy']:.3f} vs {full['top5_accuracy']:.3f}" in doc["verdict"]
    assert "With 1200 classes the sampled softmax trained" in doc["verdict"]
    md = (out / "report.md").read_text()
    assert "Many classes: full vs sampled softmax" in md
    assert f"| full softmax | softmax | {full['fit_time_s']:.2f} |" in md
