"""Sampled softmax vs full softmax for very many classes: time per epoch and accuracy.

A synthetic task with known structure: K class centroids c_k ~ N(0, I_d), Zipf class
frequencies p_k ~ 1/(k+1), and x = c_y + sigma * N(0, I_d). The Bayes rule is linear,
argmax_k (x . c_k - |c_k|^2 / 2) / sigma^2 + log p_k, so a linear softmax can reach the Bayes
accuracy, which is printed as the ceiling.

Compared, with the same linear body, batch size, Adam and thread count:
  * sigmax full softmax   SampledSoftmaxClassifier(loss="softmax")        (dense rows)
  * sigmax sampled softmax SampledSoftmaxClassifier(loss="sampled_softmax") (sparse rows)
  * sigmax negative sampling SampledSoftmaxClassifier(loss="negative_sampling")
  * torch CPU full softmax nn.Linear + cross_entropy + torch.optim.Adam

Accuracy is the exact full-softmax top-1 / top-5 on held-out data (sigmax.full_softmax_evaluate,
chunked over classes). A second run with K = 1,000,000 and d = 64 trains sampled softmax and
reports peak RSS (resource.getrusage) in a fresh process.

Usage::

    python benchmarks/bench_sampled.py --quick          # K=2000, about a minute
    python benchmarks/bench_sampled.py                  # K=50,000, d=128, 200k samples
    python benchmarks/bench_sampled.py --big-only       # the K=1,000,000 memory run only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import cpu_model


def make_task(k: int, d: int, n: int, n_test: int, sigma: float, seed: int = 0, n_val: int = 0):
    """Train and test sets, and `n_val` validation samples drawn after them from the same
    stream, so that the train and test sets do not depend on `n_val`."""
    rng = np.random.default_rng(seed)
    # Drawn in blocks (the same stream as one draw) so the task does not set the peak RSS.
    centers = np.empty((k, d), dtype=np.float32)
    for s in range(0, k, 65536):
        centers[s : s + 65536] = rng.standard_normal((min(65536, k - s), d))
    p = 1.0 / np.arange(1, k + 1)
    p /= p.sum()

    def draw(size: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(k, size, p=p)
        X = np.empty((y.size, d), dtype=np.float32)
        for s in range(0, y.size, 65536):
            yy = y[s : s + 65536]
            X[s : s + 65536] = centers[yy] + sigma * rng.standard_normal((yy.size, d))
        return X, y

    X, y = draw(n + n_test)
    if n_val:
        Xv, yv = draw(n_val)
        return X[:n], y[:n], X[n:], y[n:], centers, p, Xv, yv
    return X[:n], y[:n], X[n:], y[n:], centers, p


def bayes_accuracy(Xt, yt, centers, p, sigma):
    from sigmax import full_softmax_evaluate

    W = centers.astype(np.float64) / sigma**2
    b = -0.5 * np.sum(centers.astype(np.float64) ** 2, axis=1) / sigma**2 + np.log(p)
    ev = full_softmax_evaluate(Xt.astype(np.float64), W, b, yt, k=5)
    return float(np.mean(ev.correct)), float(np.mean(ev.in_top_k))


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def run_sigmax(name, params, X, y, Xt, yt, epochs, eval_every, log, val=None, patience=2):
    """Train for up to `epochs`; with `val` = (Xv, yv), evaluate every epoch and stop once the
    validation full-softmax log-loss has not improved for `patience` epochs.

    Returns the median s/epoch, the test history [(epoch, top1, top5, log-loss)] and the epoch
    of best validation log-loss (None without `val`): "at convergence" is that epoch.
    """
    from sigmax.estimators.sampled import SampledSoftmaxClassifier

    k = int(max(y.max(), yt.max())) + 1
    clf = SampledSoftmaxClassifier(max_iter=1, random_state=0, **params)
    history = []
    best_e, best_ll, stale = None, np.inf, 0
    for e in range(epochs):
        # partial_fit declares all K classes (some are never seen in training).
        clf.partial_fit(X, y, classes=np.arange(k))
        if val is not None or (e + 1) % eval_every == 0 or e == epochs - 1:
            ev = clf.evaluate(Xt, yt, k=5)
            history.append((e + 1, ev["accuracy"], ev["top_k_accuracy"], ev["log_loss"]))
            msg = (
                f"  {name:<26} epoch {e + 1:>2}: {clf.epoch_times_[-1]:8.2f} s/epoch  "
                f"top1 {ev['accuracy']:.4f}  top5 {ev['top_k_accuracy']:.4f}  "
                f"log-loss {ev['log_loss']:.4f}"
            )
            if val is not None:
                vll = clf.evaluate(val[0], val[1], k=1)["log_loss"]
                msg += f"  val log-loss {vll:.4f}"
                if vll < best_ll:
                    best_e, best_ll, stale = e + 1, vll, 0
                else:
                    stale += 1
            log(msg)
            if val is not None and stale >= patience:
                break
    return float(np.median(clf.epoch_times_)), history, best_e


def run_torch(X, y, Xt, yt, epochs, eval_every, batch_size, lr, threads, log):
    """torch CPU full softmax for `epochs` (no early stopping), evaluated like sigmax's."""
    import torch

    from sigmax import full_softmax_evaluate

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    k = int(max(y.max(), yt.max())) + 1
    d = X.shape[1]
    lin = torch.nn.Linear(d, k)
    with torch.no_grad():
        # Same start as the sigmax classifier: zero weights, bias = log smoothed prior.
        lin.weight.zero_()
        counts = np.bincount(y, minlength=k) + 1.0
        lin.bias.copy_(torch.from_numpy(np.log(counts / counts.sum()).astype(np.float32)))
    opt = torch.optim.Adam(lin.parameters(), lr=lr)
    Xtorch = torch.from_numpy(X)
    ytorch = torch.from_numpy(y.astype(np.int64))
    g = torch.Generator().manual_seed(0)
    times, history = [], []
    for e in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(X.shape[0], generator=g)
        for s in range(0, X.shape[0], batch_size):
            idx = perm[s : s + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(lin(Xtorch[idx]), ytorch[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        if (e + 1) % eval_every == 0 or e == epochs - 1:
            W = lin.weight.detach().numpy()
            b = lin.bias.detach().numpy()
            ev = full_softmax_evaluate(Xt, W, b, yt, k=5)
            top1, top5 = float(np.mean(ev.correct)), float(np.mean(ev.in_top_k))
            ll = float(np.mean(ev.value))
            history.append((e + 1, top1, top5, ll))
            log(
                f"  {'torch full softmax':<26} epoch {e + 1:>2}: {times[-1]:8.2f} s/epoch  "
                f"top1 {top1:.4f}  top5 {top5:.4f}  log-loss {ll:.4f}"
            )
    return float(np.median(times)), history


def big_run(args, log) -> dict:
    """K = 1,000,000, d = 64: sampled softmax in bounded memory (run in a fresh process)."""
    from sigmax.estimators.sampled import SampledSoftmaxClassifier

    k, d = args.big_classes, 64
    t0 = time.perf_counter()
    X, y, Xt, yt, centers, _ = make_task(k, d, args.big_samples, 5000, args.big_sigma, seed=1)
    del centers
    rss_data = peak_rss_mb()
    log(f"  data ready in {time.perf_counter() - t0:.1f} s, peak RSS so far {rss_data:.0f} MB")
    clf = SampledSoftmaxClassifier(
        loss="sampled_softmax",
        n_negatives=args.negatives,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        sampler=args.sampler,
        head_fraction=args.head_fraction,
        label_log_q=args.label_log_q,
        max_iter=args.big_epochs,
        random_state=0,
        verbose=1,
    )
    for _ in range(args.big_epochs):
        clf.partial_fit(X, y, classes=np.arange(k))
    ev = clf.evaluate(Xt, yt, k=5)
    params_mb = 3 * clf.coef_.nbytes / 2**20 + 3 * clf.intercept_.nbytes / 2**20
    return {
        "epoch_s": float(np.median(clf.epoch_times_)),
        "top1": ev["accuracy"],
        "top5": ev["top_k_accuracy"],
        "params_mb": params_mb,
        "data_mb": (X.nbytes + Xt.nbytes) / 2**20,
        "peak_rss_mb": peak_rss_mb(),
        "n": X.shape[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small K for a smoke run")
    ap.add_argument("--classes", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--test", type=int, default=10_000)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the sampled methods")
    ap.add_argument("--eval-every", type=int, default=5, help="evaluate every N epochs")
    ap.add_argument("--full-epochs", type=int, default=2, help="epochs of the full softmaxes")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--negatives", type=int, default=512)
    ap.add_argument(
        "--sampler",
        default="uniform",
        choices=["uniform", "head_uniform", "unigram", "log_uniform"],
    )
    ap.add_argument(
        "--head-fraction",
        type=float,
        default=0.5,
        help="share of the negatives that is the "
        "fixed head of most frequent classes (--sampler head_uniform)",
    )
    ap.add_argument(
        "--label-log-q",
        action="store_true",
        help="also correct the label's logit by log Q "
        "(TensorFlow's convention; the sections of results/sampled.md before 2026-11-28 ran so)",
    )
    ap.add_argument("--lr", type=float, default=0.03, help="Adam lr of the sampled methods")
    ap.add_argument(
        "--full-lr", type=float, default=None, help="Adam lr of the full softmaxes (default: --lr)"
    )
    ap.add_argument(
        "--val",
        type=int,
        default=0,
        help="validation samples: evaluate every "
        "epoch and stop each method at its best validation log-loss",
    )
    ap.add_argument(
        "--patience",
        type=int,
        default=2,
        help="epochs without a better validation log-loss before stopping (with --val)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip", default="", help="comma list: full,torch,sampled,negative,big")
    ap.add_argument(
        "--full-baseline",
        type=float,
        default=None,
        help="s/epoch of sigmax's full softmax measured in an earlier run, for the speed-up "
        "column when --skip full",
    )
    ap.add_argument("--big-only", action="store_true")
    ap.add_argument("--big-classes", type=int, default=1_000_000)
    ap.add_argument("--big-samples", type=int, default=200_000)
    ap.add_argument("--big-epochs", type=int, default=1)
    ap.add_argument("--big-sigma", type=float, default=0.8)
    ap.add_argument("--out", default=None, help="append the Markdown table to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.classes, args.dim, args.samples, args.test = 2000, 32, 40_000, 4000
        args.epochs, args.full_epochs, args.negatives, args.eval_every = 6, 3, 128, 3
        args.big_classes, args.big_samples = 100_000, 50_000
    # Same threads for BLAS (sigmax via NumPy) and torch.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    os.environ.setdefault("SIGMAX_NUM_THREADS", str(args.threads))
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    skip = set(filter(None, args.skip.split(",")))

    def log(msg: str) -> None:
        print(msg, flush=True)

    if args.big_only:
        r = big_run(args, log)
        print("BIG " + json.dumps(r), flush=True)
        return 0

    cmd = "python benchmarks/bench_sampled.py " + " ".join(argv or sys.argv[1:])
    log(f"# {cmd}\n# CPU: {cpu_model()}, {os.cpu_count()} cores visible, threads={args.threads}")
    k, d = args.classes, args.dim
    full_lr = args.lr if args.full_lr is None else args.full_lr
    val = None
    if args.val:
        X, y, Xt, yt, centers, p, Xv, yv = make_task(
            k, d, args.samples, args.test, args.sigma, n_val=args.val
        )
        val = (Xv, yv)
    else:
        X, y, Xt, yt, centers, p = make_task(k, d, args.samples, args.test, args.sigma)
    b1, b5 = bayes_accuracy(Xt, yt, centers, p, args.sigma)
    log(
        f"task: K={k} d={d} n={args.samples} test={args.test} sigma={args.sigma}, "
        f"classes seen in training: {np.unique(y).size}; Bayes top1 {b1:.4f} top5 {b5:.4f}"
    )
    common = dict(
        batch_size=args.batch_size, learning_rate=args.lr, optimizer="adam", sampler=args.sampler,
        head_fraction=args.head_fraction, label_log_q=args.label_log_q,
    )  # fmt: skip
    es = dict(val=val, patience=args.patience)
    rows = []  # (name, lr, s/epoch, test history, epoch of best validation log-loss)
    neg = dict(n_negatives=args.negatives, **common)
    full_params = dict(loss="softmax", **{**common, "learning_rate": full_lr})
    methods = [  # (--skip key, name, estimator parameters, lr, epochs, evaluate every)
        ("sampled", "sigmax sampled softmax", dict(loss="sampled_softmax", **neg), args.lr,
         args.epochs, args.eval_every),
        ("negative", "sigmax negative sampling", dict(loss="negative_sampling", **neg), args.lr,
         args.epochs, args.eval_every),
        ("full", "sigmax full softmax", full_params, full_lr, args.full_epochs, 1),
    ]  # fmt: skip
    for key, name, params, lr, epochs, every in methods:
        if key not in skip:
            t, h, be = run_sigmax(name, params, X, y, Xt, yt, epochs, every, log, **es)
            rows.append((name, lr, t, h, be))
    if "torch" not in skip:
        t, h = run_torch(
            X, y, Xt, yt, args.full_epochs, 1, args.batch_size, full_lr, args.threads, log
        )
        rows.append(("torch CPU full softmax", full_lr, t, h, None))
    del X, Xt
    # The speed-up is against sigmax's full softmax: this run's, or a baseline measured earlier
    # (--full-baseline), never against whichever method happened to run last.
    full = next((r[2] for r in rows if r[0] == "sigmax full softmax"), args.full_baseline)
    lines = [
        f"`{cmd}`",
        "",
        f"CPU: {cpu_model()}; threads={args.threads}. Task: K={k}, d={d}, "
        f"n_train={args.samples}, n_test={args.test}, sigma={args.sigma}, Zipf(1) classes; "
        f"batch {args.batch_size}, Adam, {args.negatives} shared negatives "
        f"({args.sampler} sampler"
        + (f", head fraction {args.head_fraction}" if args.sampler == "head_uniform" else "")
        + (", label log Q corrected" if args.label_log_q else "")
        + f"). Bayes top-1 {b1:.4f}, top-5 {b5:.4f}."
        + (
            f" Validation: {args.val} samples; each method stops {args.patience} epochs after "
            "its best validation full-softmax log-loss, and the metrics are the test set's "
            'at that best epoch ("at convergence"); the last column is the best test top-1 '
            "over all the epochs run."
            if val is not None
            else ""
        ),
        "",
        "| method | lr | s/epoch (median) | speed-up vs sigmax full | epochs run | epoch "
        "reported | top-1 | top-5 | test log-loss | max top-1 (epoch) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, lr, t, h, be in rows:
        e, a1, a5, ll = next(r for r in h if r[0] == be) if be is not None else h[-1]
        m1 = max(h, key=lambda r: r[1])
        speed = f"{full / t:.1f}x" if full else "-"
        lines.append(
            f"| {name} | {lr:g} | {t:.2f} | {speed} | {h[-1][0]} | {e} | {a1:.4f} | {a5:.4f} "
            f"| {ll:.4f} | {m1[1]:.4f} ({m1[0]}) |"
        )
    if "big" not in skip:
        log(f"big run: K={args.big_classes}, d=64 in a fresh process ...")
        out = subprocess.run(
            [sys.executable, __file__, "--big-only", "--threads", str(args.threads),
             "--big-classes", str(args.big_classes), "--big-samples", str(args.big_samples),
             "--big-epochs", str(args.big_epochs), "--negatives", str(args.negatives),
             "--batch-size", str(args.batch_size), "--lr", str(args.lr),
             "--sampler", args.sampler, "--head-fraction", str(args.head_fraction)]
            + (["--label-log-q"] if args.label_log_q else []),
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        log(out.stdout)
        big = json.loads(out.stdout.split("BIG ", 1)[1])
        lines += [
            "",
            f"K={args.big_classes:,}, d=64, n_train={big['n']:,}, sampled softmax, "
            f"{args.big_epochs} epoch(s): {big['epoch_s']:.1f} s/epoch, top-1 {big['top1']:.4f}, "
            f"top-5 {big['top5']:.4f}. Peak RSS {big['peak_rss_mb']:.0f} MB, of which "
            f"parameters + Adam state {big['params_mb']:.0f} MB and the data "
            f"{big['data_mb']:.0f} MB (a full softmax step would need a "
            f"{args.batch_size} x {args.big_classes:,} float32 logit matrix, "
            f"{args.batch_size * args.big_classes * 4 / 2**20:.0f} MB, plus dense Adam updates of "
            "all rows).",
        ]
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
