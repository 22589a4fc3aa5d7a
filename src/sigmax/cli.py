"""The ``sigmax`` command: compare, fit, predict, plot and bench.

``main(argv)`` returns the exit status: 0 for success, 2 for usage errors (from argparse), 1 for
data errors. Errors are one line on stderr, ``sigmax: error: ...``; ``--debug`` adds the
traceback. Heavy imports (scikit-learn, matplotlib, rich) happen inside the commands.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sigmax.datasets import DataError

__all__ = ["main"]

MODEL_FORMAT = "sigmax-cli-model"
MODEL_FORMAT_VERSION = 1
PLOT_KINDS = ("sigmoid", "softmax", "calibration", "ovr-sums", "regions")


# --------------------------------------------------------------------------- console helpers


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    is_tty = stream.isatty()
    # Off a terminal rich would wrap tables at 80 columns; a wider fixed width keeps them whole.
    return Console(file=stream, width=None if is_tty else 120, highlight=False)


@contextlib.contextmanager
def _progress(total: int, description: str, *, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr, shown only on a terminal and when not quiet."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(stderr=True)
    disabled = quiet or not console.is_terminal
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disabled,
    ) as bar:
        task = bar.add_task(description, total=total)

        def step(text: str) -> None:
            bar.update(task, advance=1, description=text)

        yield step


def _note(msg: str, *, quiet: bool) -> None:
    if not quiet:
        print(f"sigmax: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- compare


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def _quick(ds: Any, seed: int, n: int = 300) -> Any:
    """A stratified subsample of at most `n` rows, for fast test runs (hidden --quick)."""
    if ds.X.shape[0] <= n:
        return ds
    from sklearn.model_selection import train_test_split

    strat = None if ds.task == "multilabel" else ds.y
    idx, _ = train_test_split(
        np.arange(ds.X.shape[0]), train_size=n, random_state=seed, stratify=strat
    )
    ds.X, ds.y = ds.X[idx], ds.y[idx]
    ds.notes.append(f"--quick: subsampled to {n} rows")
    return ds


def _cmd_compare(args: argparse.Namespace) -> int:
    from sigmax import __version__, datasets
    from sigmax.report import compare, render
    from sigmax.report.atomic import check_report_dest

    t0 = time.perf_counter()
    check_report_dest(args.out)
    if args.data is None:
        if args.target:
            raise DataError("--target needs a DATA file")
        sets = datasets.default_datasets(random_state=args.seed)
    else:
        sets = [datasets.load_table(args.data, args.target)]
    if args.quick or _env_flag("SIGMAX_QUICK"):
        sets = [_quick(ds, args.seed) for ds in sets]
    for ds in sets:
        for note in ds.notes:
            _note(f"{ds.name}: {note}", quiet=args.quiet)
    Sig, _ = compare.estimator_classes()
    n_steps = args.cv * 2 * len(sets)
    results = []
    with _progress(n_steps, "fitting", quiet=args.quiet) as step:
        for ds in sets:
            results.append(
                compare.compare_dataset(ds, cv=args.cv, seed=args.seed, C=args.C, progress=step)
            )
    figures = render.build_figures(results, sets, seed=args.seed)
    tasks = render.public_results(results)
    doc = {
        "sigmax_version": __version__,
        "estimators": f"{Sig.__module__}",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "sigmax compare " + " ".join(args.argv_echo),
        "cv": args.cv,
        "seed": args.seed,
        "C": args.C,
        "verdict": compare.verdict(tasks),
        "tasks": tasks,
        "figures": {name: caption for name, (caption, _) in figures.items()},
        "wall_time_s": time.perf_counter() - t0,
    }
    out = render.write_report(args.out, doc, figures)
    _print_compare(doc, out, quiet=args.quiet)
    return 0


def _print_compare(doc: dict[str, Any], out: Path, *, quiet: bool) -> None:
    from rich.table import Table

    from sigmax.report.render import SCORE_LABELS, format_score

    console = _console()
    table = Table(title="sigmoid head vs softmax head (mean ± std over folds)", show_lines=False)
    table.add_column("data")
    table.add_column("head")
    for s in SCORE_LABELS:
        table.add_column(SCORE_LABELS[s], justify="right")
    for r in doc["tasks"]:
        label = f"{r['name']}\n{r['task']}" + ("\nSYNTHETIC" if r.get("synthetic") else "")
        for i, head in enumerate(("sigmoid", "softmax")):
            m = r["heads"][head]
            cells = [format_score(s, m[s]) for s in SCORE_LABELS]
            table.add_row(label if i == 0 else "", head, *cells, end_section=i == 1)
    console.print(table)
    for r in doc["tasks"]:
        if r["task"] == "binary":
            b = r["binary"]
            console.print(
                f"[bold]{r['name']}[/]: max |Δp| softmax vs its sigmoid conversion "
                f"{b['conversion_max_abs_diff']:.1e}; vs sigmoid fitted at C={b['mapped_C']:g} "
                f"{b['mapped_max_abs_diff']:.1e}; at the same C={r['C']:g} "
                f"{b['same_C_max_abs_diff']:.1e}"
            )
        elif r["task"] == "multiclass":
            m = r["multiclass"]
            console.print(
                f"[bold]{r['name']}[/]: OvR sigmoid sums min {m['min']:.2f}, median "
                f"{m['median']:.2f}, max {m['max']:.2f}; {m['frac_off_by_0.1']:.0%} of rows off "
                "by > 0.1"
            )
        else:
            ml = r["multilabel"]
            console.print(
                f"[bold]{r['name']}[/]: subset accuracy sigmoids "
                f"{ml['sigmoid']['subset_accuracy']:.3f}, softmax top-1 "
                f"{ml['softmax_top1']['subset_accuracy']:.3f}; label recall "
                f"{ml['sigmoid']['recall']:.2f} vs {ml['softmax_top1']['recall']:.2f}"
            )
        if "many_classes" in r:
            mc = r["many_classes"]
            for label, h in mc.get("heads", {}).items():
                ll = "n/a" if h["log_loss"] is None else f"{h['log_loss']:.3f}"
                console.print(
                    f"[bold]{r['name']}[/]: {label}: fit {h['fit_time_s']:.2f} s, top-1 "
                    f"{h['top1_accuracy']:.3f}, top-5 {h['top5_accuracy']:.3f}, log-loss {ll}"
                )
            for note in mc.get("notes", []) + ([mc["note"]] if "note" in mc else []):
                console.print(f"[bold]{r['name']}[/]: many classes: {note}")
    console.print()
    console.print(doc["verdict"])
    console.print()
    console.print(
        f"Report: {out / 'report.html'} (also report.md, results.json, "
        f"{len(doc['figures'])} PNG figures); {doc['wall_time_s']:.1f} s"
    )


# --------------------------------------------------------------------------- fit / predict


def _make_estimator(head: str, model: str, C: float, seed: int) -> Any:
    if model == "mlp":
        try:
            from sigmax.estimators import MLPClassifier
        except ImportError as exc:
            raise DataError(f"the MLP estimator cannot be imported ({exc})") from None
        return MLPClassifier(head=head, random_state=seed)
    from sigmax.report.compare import estimator_classes

    Sig, Soft = estimator_classes()
    return (Sig if head == "sigmoid" else Soft)(C=C, max_iter=1000)


def _cmd_fit(args: argparse.Namespace) -> int:
    import warnings

    from sigmax import datasets
    from sigmax.report.atomic import atomic_write_bytes, check_writable_dir

    out = Path(args.output)
    check_writable_dir(out.parent if str(out.parent) else Path("."))
    ds = datasets.load_table(args.data, args.target)
    for note in ds.notes:
        _note(note, quiet=args.quiet)
    if ds.task == "multilabel" and args.head == "softmax":
        raise DataError(
            "the target is multi-label (several 0/1 columns) but a softmax head predicts one "
            "class per row: use --head sigmoid"
        )
    mean = ds.X.mean(axis=0)
    scale = ds.X.std(axis=0)
    scale[scale == 0] = 1.0
    est = _make_estimator(args.head, args.model, args.C, args.seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit((ds.X - mean) / scale, ds.y)
    for w in caught:
        if issubclass(w.category, Warning) and "converge" in str(w.message).lower():
            _note(f"warning: {w.message}", quiet=args.quiet)
    fit_s = time.perf_counter() - t0
    meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "task": ds.task,
        "head": args.head,
        "model": args.model,
        "target": ds.target_names,
        "classes": [c.item() if hasattr(c, "item") else c for c in ds.classes],
        "feature_spec": ds.feature_spec,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "trained_on": str(args.data),
    }
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "model.npz"
        est.save(npz)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("sigmax-cli.json", json.dumps(meta))
            z.write(npz, "model.npz")
    atomic_write_bytes(out, buf.getvalue())
    if not args.quiet:
        pred = np.asarray(est.predict((ds.X - mean) / scale))
        hit = np.all(pred == ds.y, axis=1) if ds.task == "multilabel" else pred == ds.y
        _console().print(
            f"fitted {type(est).__name__} ({args.head} head, {ds.task}, {ds.X.shape[0]} rows, "
            f"{ds.X.shape[1]} features) in {fit_s:.2f} s; training accuracy "
            f"{float(np.mean(hit)):.4f}; saved to {out}"
        )
    return 0


def _load_model(path: str) -> tuple[dict[str, Any], Any]:
    import sigmax

    p = Path(path)
    if not p.exists():
        raise DataError(f"no such model file: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory, expected a model file written by 'sigmax fit'")
    try:
        with zipfile.ZipFile(p) as z:
            meta = json.loads(z.read("sigmax-cli.json"))
            npz = z.read("model.npz")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError, EOFError) as exc:
        raise DataError(
            f"{p} is not a readable sigmax model file (corrupt or truncated?): {exc}"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise DataError(f"{p} is not a model file written by 'sigmax fit'")
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise DataError(
            f"{p} has model format version {meta.get('format_version')!r}; this sigmax reads "
            f"version {MODEL_FORMAT_VERSION}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "model.npz"
        f.write_bytes(npz)
        try:
            est = sigmax.load(f)
        except ValueError as exc:
            raise DataError(f"{p}: {exc}") from None
    return meta, est


def _cmd_predict(args: argparse.Namespace) -> int:
    from sigmax import datasets
    from sigmax.report.atomic import atomic_write_bytes, check_writable_dir

    if args.output is not None:
        out = Path(args.output)
        check_writable_dir(out.parent if str(out.parent) else Path("."))
    meta, est = _load_model(args.model)
    columns = datasets.read_table(args.data)
    X = datasets.encode_features(columns, meta["feature_spec"], source=Path(args.data).name)
    X = (X - np.asarray(meta["mean"])) / np.asarray(meta["scale"])
    proba = np.asarray(est.predict_proba(X))
    pred = np.asarray(est.predict(X))
    classes = meta["classes"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if meta["task"] == "multilabel":
        w.writerow([f"pred_{c}" for c in classes] + [f"p_{c}" for c in classes])
        for pr, pp in zip(pred, proba, strict=True):
            w.writerow([int(v) for v in pr] + [repr(float(v)) for v in pp])
    else:
        w.writerow(["prediction"] + [f"p_{c}" for c in classes])
        for pr, pp in zip(pred, proba, strict=True):
            w.writerow([pr.item() if hasattr(pr, "item") else pr] + [repr(float(v)) for v in pp])
    text = buf.getvalue()
    if args.output is None:
        sys.stdout.write(text)
    else:
        atomic_write_bytes(args.output, text.encode("utf-8"))
        _note(f"wrote {len(pred)} predictions to {args.output}", quiet=args.quiet)
    return 0


# --------------------------------------------------------------------------- plot


def _cmd_plot(args: argparse.Namespace) -> int:
    from sigmax import datasets
    from sigmax.report import compare, plots
    from sigmax.report.atomic import atomic_write_bytes, check_writable_dir
    from sigmax.report.metrics import calibration_pairs

    out = Path(args.out or f"sigmax-{args.kind}.png")
    check_writable_dir(out.parent if str(out.parent) else Path("."))
    if args.data is None and args.target:
        raise DataError("--target needs a DATA file")

    def data(default: Callable[[], Any]) -> Any:
        if args.data is None:
            return default()
        ds = datasets.load_table(args.data, args.target)
        for note in ds.notes:
            _note(note, quiet=args.quiet)
        return ds

    if args.kind == "sigmoid":
        fig = plots.plot_sigmoid()
    elif args.kind == "softmax":
        fig = plots.plot_softmax()
    elif args.kind == "calibration":
        ds = data(datasets.load_breast_cancer)
        r = compare.compare_dataset(ds, cv=3, seed=args.seed)
        oof = r["_oof"]
        curves = {h: calibration_pairs(ds.task, oof["y"], oof["proba"][h]) for h in oof["proba"]}
        fig = plots.plot_calibration(curves, title=f"Reliability diagram: {ds.name} ({ds.task})")
    elif args.kind == "ovr-sums":
        ds = data(datasets.load_digits)
        if ds.task != "multiclass":
            raise DataError(f"ovr-sums needs a multi-class target; {ds.name} is {ds.task}")
        r = compare.compare_dataset(ds, cv=3, seed=args.seed)
        fig = plots.plot_ovr_sums(
            r["_oof"]["ovr_sums"], title=f"One-vs-rest sigmoid probability sums: {ds.name}"
        )
    else:
        ds = data(datasets.load_digits)
        if ds.task == "multilabel":
            raise DataError("regions needs a binary or multi-class target, not multi-label")
        X2, y2, heads, _ = compare.fit_2d_heads(ds)
        fig = plots.plot_regions(
            X2,
            y2,
            heads,
            title=f"Decision regions on 2 principal components: {ds.name}",
            ovr_sums=ds.task == "multiclass",
        )
    atomic_write_bytes(out, plots.figure_png(fig))
    _note(f"wrote {out}", quiet=args.quiet)
    return 0


# --------------------------------------------------------------------------- bench


def _cmd_bench(args: argparse.Namespace) -> int:
    from sigmax.report.bench import run_builtin, run_suite

    if args.suite is not None:
        return run_suite(Path(args.suite), quiet=args.quiet)
    rows = run_builtin(quick=args.quick)
    from rich.table import Table

    table = Table(
        title="sigmax vs installed peers (median time; ratio = peer / sigmax, > 1: sigmax faster)"
    )
    for col in ("function", "shape", "dtype", "sigmax (ms)", "peer", "peer (ms)", "ratio"):
        table.add_column(col, justify="right" if col not in ("function", "peer") else "left")
    for r in rows:
        table.add_row(
            r["function"],
            "×".join(map(str, r["shape"])),
            r["dtype"],
            f"{r['sigmax_ms']:.3f}",
            r["peer"],
            f"{r['peer_ms']:.3f}",
            f"{r['ratio']:.2f}",
        )
    _console().print(table)
    bench_dir = Path("benchmarks")
    if not args.quiet and bench_dir.is_dir() and any(bench_dir.glob("bench_*.py")):
        _note(
            "the full suite is in ./benchmarks: run 'sigmax bench --suite benchmarks'", quiet=False
        )
    return 0


# --------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sigmax`` command."""
    from sigmax import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars or notes",
    )
    parser = argparse.ArgumentParser(
        prog="sigmax",
        description="Sigmoid or softmax? Fit the same model with each output layer and compare.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"sigmax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="fit both heads with cross-validation and write a report",
        description="Fit a linear model with a sigmoid head and with a softmax head, with "
        "cross-validation, and write report.html, report.md, results.json and PNG figures. "
        "Without DATA it runs on bundled data: breast_cancer (binary), digits (multi-class) "
        "and yeast (multi-label).",
    )
    p.add_argument("data", nargs="?", metavar="DATA", help="a CSV or Parquet file (optional)")
    p.add_argument(
        "--target",
        nargs="+",
        metavar="COL",
        help="target column(s): one column (binary or multi-class) or several 0/1 columns "
        "(multi-label); default: the last column",
    )
    p.add_argument(
        "--out",
        default="sigmax-report",
        metavar="DIR",
        help="report folder (default: ./sigmax-report)",
    )
    p.add_argument("--cv", type=_positive_int, default=5, metavar="K", help="folds (default: 5)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    p.add_argument(
        "--C", type=_positive_float, default=1.0, help="inverse L2 strength (default: 1)"
    )
    p.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "fit",
        parents=[common],
        help="fit a model on a CSV/Parquet file and save it",
        description="Fit a sigmoid-head or softmax-head model and save it (features are "
        "standardized; the scaling is saved with the model).",
    )
    p.add_argument("data", metavar="DATA", help="a CSV or Parquet file")
    p.add_argument("--target", nargs="+", required=True, metavar="COL", help="target column(s)")
    p.add_argument("--head", choices=("sigmoid", "softmax"), required=True)
    p.add_argument("--model", choices=("linear", "mlp"), default="linear")
    p.add_argument("--C", type=_positive_float, default=1.0, help="inverse L2 strength (linear)")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "predict",
        parents=[common],
        help="predict with a saved model",
        description="Write predictions and one probability column per class as CSV.",
    )
    p.add_argument("model", metavar="MODEL", help="a model written by 'sigmax fit'")
    p.add_argument("data", metavar="DATA", help="a CSV or Parquet file with the same features")
    p.add_argument("-o", "--output", metavar="CSV", help="output file (default: stdout)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "plot",
        parents=[common],
        help="draw one figure to a PNG file",
        description="sigmoid: the sigmoid and its derivative. softmax: softmax_0 against z_0 "
        "for several other logits. calibration, ovr-sums, regions: fitted on DATA, or on "
        "bundled data (breast_cancer for calibration, digits otherwise).",
    )
    p.add_argument("kind", choices=PLOT_KINDS)
    p.add_argument("data", nargs="?", metavar="DATA", help="a CSV or Parquet file (optional)")
    p.add_argument("--target", nargs="+", metavar="COL")
    p.add_argument("--out", metavar="FILE", help="PNG file (default: sigmax-KIND.png)")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "bench",
        parents=[common],
        help="time sigmax against installed peers",
        description="A short built-in comparison of sigmax's functions against a textbook NumPy "
        "version, scipy.special and torch (when installed), printing median times and ratios. "
        "--suite DIR runs DIR/bench_*.py --quick instead.",
    )
    p.add_argument("--quick", action="store_true", help="smaller arrays, fewer repeats")
    p.add_argument("--suite", metavar="DIR", help="run the benchmark scripts in DIR with --quick")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sigmax`` with `argv` (default: ``sys.argv[1:]``) and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    args.argv_echo = argv[1:] if argv else []
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("sigmax: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        known = isinstance(exc, (DataError, OSError, ValueError))
        msg = str(exc).replace("\n", " ").strip() or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename is not None:
            msg = f"{exc.strerror or exc}: {exc.filename}"
        prefix = "error" if known else f"unexpected {type(exc).__name__}"
        hint = "" if args.debug or known else " (run with --debug for the traceback)"
        print(f"sigmax: {prefix}: {msg}{hint}", file=sys.stderr)
        return 1
