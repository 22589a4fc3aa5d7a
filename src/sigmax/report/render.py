"""Turn comparison results into figures, ``report.md``, a self-contained ``report.html`` and
``results.json``, written atomically into one folder.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sigmax.datasets import Dataset
from sigmax.report import plots
from sigmax.report.atomic import atomic_dir
from sigmax.report.metrics import calibration_pairs

__all__ = [
    "SCORE_LABELS",
    "build_figures",
    "format_score",
    "public_results",
    "render_html",
    "render_markdown",
    "write_report",
]

SCORE_LABELS = {
    "accuracy": "accuracy ↑",
    "log_loss": "log-loss ↓",
    "brier": "Brier ↓",
    "ece": "ECE ↓",
    "fit_time_s": "fit time (ms)",
}
_CALIBRATION_WHAT = {
    "binary": "P(class 1)",
    "multiclass": "top-class probability",
    "multilabel": "label probability",
}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_") or "data"


def build_figures(
    results: Sequence[Mapping[str, Any]], datasets: Sequence[Dataset], /, *, seed: int = 0
) -> dict[str, tuple[str, bytes]]:
    """PNG figures for a comparison: ``{file name: (caption, png bytes)}``.

    Needs each result's private ``_oof`` predictions (see `compare_dataset`).
    """
    from sigmax.report.compare import fit_2d_heads

    figs: dict[str, tuple[str, bytes]] = {
        "sigmoid.png": ("The sigmoid and its derivative.", plots.figure_png(plots.plot_sigmoid())),
        "softmax.png": (
            "softmax_0 as a function of z_0: a sigmoid whose midpoint is the logsumexp of the "
            "other logits.",
            plots.figure_png(plots.plot_softmax()),
        ),
    }
    for r, ds in zip(results, datasets, strict=True):
        slug = _slug(r["name"])
        oof = r["_oof"]
        label = r["name"] + (" (SYNTHETIC)" if r.get("synthetic") else "")
        curves = {h: calibration_pairs(r["task"], oof["y"], oof["proba"][h]) for h in oof["proba"]}
        figs[f"calibration_{slug}.png"] = (
            f"Reliability diagrams on {label}, out-of-fold predictions.",
            plots.figure_png(
                plots.plot_calibration(
                    curves,
                    title=f"Reliability diagram: {label} ({r['task']})",
                    what=_CALIBRATION_WHAT[r["task"]],
                )
            ),
        )
        if r["task"] == "multiclass":
            figs[f"ovr_sums_{slug}.png"] = (
                f"Sums of the one-vs-rest sigmoid probabilities on {label}.",
                plots.figure_png(
                    plots.plot_ovr_sums(
                        oof["ovr_sums"], title=f"One-vs-rest sigmoid probability sums: {label}"
                    )
                ),
            )
        if r["task"] in ("multiclass", "binary") and r["n_classes"] <= 20:
            X2, y2, heads, explained = fit_2d_heads(ds)
            figs[f"regions_{slug}.png"] = (
                f"Decision regions of both heads refitted on the first two principal components "
                f"of {label} ({explained:.0%} of the variance).",
                plots.figure_png(
                    plots.plot_regions(
                        X2,
                        y2,
                        heads,
                        title=f"Decision regions on 2 principal components: {label}",
                        ovr_sums=r["task"] == "multiclass",
                    )
                ),
            )
        if r["task"] == "multilabel":
            figs[f"label_sets_{slug}.png"] = (
                f"Sizes of the predicted label sets on {label}.",
                plots.figure_png(
                    plots.plot_label_set_sizes(
                        oof["y"].sum(axis=1),
                        oof["set_sizes"],
                        title=f"Label-set sizes: {label}",
                    )
                ),
            )
    return figs


def public_results(results: Sequence[Mapping[str, Any]], /) -> list[dict[str, Any]]:
    """The results without their private (array) entries, ready for JSON."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]


def format_score(score: str, m: Mapping[str, Any], /) -> str:
    """``mean ± std`` of one score, in milliseconds for fit times."""
    if score == "fit_time_s":
        return f"{1e3 * m['mean']:.1f} ± {1e3 * m['std']:.1f}"
    return f"{m['mean']:.4f} ± {m['std']:.4f}"


def _task_tables(r: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table of one task."""
    heads = r["heads"]
    tables = [
        (
            f"Scores over folds ({r['cv']}, mean ± std)",
            ["score", "sigmoid head", "softmax head"],
            [
                [
                    SCORE_LABELS[s],
                    format_score(s, heads["sigmoid"][s]),
                    format_score(s, heads["softmax"][s]),
                ]
                for s in SCORE_LABELS
            ],
        )
    ]
    if r["task"] == "binary":
        b = r["binary"]
        tables.append(
            (
                "Are they the same model?",
                ["comparison", "largest |Δp| on test rows"],
                [
                    [
                        "softmax vs its exact conversion to a sigmoid (w = w₁ − w₀, b = b₁ − b₀)",
                        f"{b['conversion_max_abs_diff']:.2e}",
                    ],
                    [
                        f"converted softmax (C = {r['C']:g}) vs sigmoid fitted with C = "
                        f"{b['mapped_C']:g}",
                        f"{b['mapped_max_abs_diff']:.2e}",
                    ],
                    [
                        f"converted softmax vs sigmoid fitted with the same C = {r['C']:g}",
                        f"{b['same_C_max_abs_diff']:.2e}",
                    ],
                ],
            )
        )
    elif r["task"] == "multiclass":
        m = r["multiclass"]
        tables.append(
            (
                "Sums of one-vs-rest sigmoid probabilities (a softmax always sums to 1)",
                ["statistic", "value"],
                [
                    [
                        "min / 5% / median / 95% / max",
                        " / ".join(f"{m[k]:.3f}" for k in ("min", "p05", "median", "p95", "max")),
                    ],
                    ["mean |sum − 1|", f"{m['mean_abs_dev']:.3f}"],
                    ["rows with |sum − 1| > 0.1", f"{m['frac_off_by_0.1']:.1%}"],
                    ["rows where no class has p > 0.5", f"{m['frac_no_class_above_half']:.1%}"],
                    [
                        "rows where several classes have p > 0.5",
                        f"{m['frac_several_above_half']:.1%}",
                    ],
                ],
            )
        )
    elif r["task"] == "multilabel":
        ml = r["multilabel"]
        names = {
            "sigmoid": "sigmoids, p > 0.5",
            "softmax_top1": "softmax, top-1",
            "softmax_topk": "softmax, top-k with k = true count (oracle)",
        }
        tables.append(
            (
                f"Label sets (true: {ml['true_mean_set_size']:.2f} labels per row; "
                f"{ml['frac_single_label_rows']:.1%} of rows have one label)",
                [
                    "predictor",
                    "subset accuracy ↑",
                    "Hamming loss ↓",
                    "precision ↑",
                    "recall ↑",
                    "labels per row",
                ],
                [
                    [
                        label,
                        f"{ml[k]['subset_accuracy']:.3f}",
                        f"{ml[k]['hamming_loss']:.3f}",
                        f"{ml[k]['precision']:.3f}",
                        f"{ml[k]['recall']:.3f}",
                        f"{ml[k]['mean_set_size']:.2f}",
                    ]
                    for k, label in names.items()
                ],
            )
        )
    if "many_classes" in r:
        mc = r["many_classes"]
        if "heads" not in mc:
            rows = [[k, str(v)] for k, v in mc.items()]
            tables.append(("Many classes: sampled softmax", ["item", "value"], rows))
        else:
            title = (
                f"Many classes: full vs sampled softmax ({mc['n_classes']} classes, "
                f"{mc['split']}: {mc['n_train']} train / {mc['n_test']} test rows, "
                f"{mc['epochs']} epochs, batch {mc['batch_size']}, {mc['n_negatives']} "
                f"negatives; {mc['n_test_unseen_class']} test rows of classes unseen in "
                "training count as wrong and are left out of the log-loss)"
                + "".join(f"; {n}" for n in mc.get("notes", []))
            )
            header = ["head", "loss", "fit time (s) ↓", "top-1 ↑", "top-5 ↑", "log-loss ↓"]
            rows = [
                [
                    label,
                    h["loss"],
                    f"{h['fit_time_s']:.2f}",
                    f"{h['top1_accuracy']:.3f}",
                    f"{h['top5_accuracy']:.3f}",
                    "n/a" if h["log_loss"] is None else f"{h['log_loss']:.3f}",
                ]
                for label, h in mc["heads"].items()
            ]
            tables.append((title, header, rows))
    return tables


def _task_title(r: Mapping[str, Any]) -> str:
    synthetic = " — SYNTHETIC data" if r.get("synthetic") else ""
    return (
        f"{r['name']}: {r['task']}, {r['n_samples']} rows × {r['n_features']} features, "
        f"{r['n_classes']} {'labels' if r['task'] == 'multilabel' else 'classes'}{synthetic}"
    )


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(c.replace("|", "\\|") for c in header) + " |"]
    out.append("|" + "---|" * len(header))
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def _figures_of(slug: str, figures: Mapping[str, tuple[str, bytes]]) -> list[str]:
    return [f for f in figures if f.endswith(f"_{slug}.png")]


def render_markdown(doc: Mapping[str, Any], figures: Mapping[str, tuple[str, bytes]], /) -> str:
    """The report as Markdown, with the figures linked as PNG files next to it."""
    lines = [
        "# sigmax compare: sigmoid head vs softmax head",
        "",
        f"sigmax {doc['sigmax_version']}, estimators `{doc['estimators']}`, C = {doc['C']:g}, "
        f"seed {doc['seed']}, run in {doc['wall_time_s']:.1f} s.",
        "",
        "## Verdict",
        "",
        doc["verdict"],
        "",
    ]
    for r in doc["tasks"]:
        lines += [f"## {_task_title(r)}", "", f"Source: {r['source']}.", ""]
        lines += [f"- {n}" for n in r.get("notes", [])] + ([""] if r.get("notes") else [])
        for title, header, rows in _task_tables(r):
            lines += [f"**{title}**", "", _md_table(header, rows), ""]
        for f in _figures_of(_slug(r["name"]), figures):
            lines += [f"![{figures[f][0]}]({f})", ""]
    lines += ["## The two links", ""]
    lines += [f"![{figures[f][0]}]({f})\n" for f in ("sigmoid.png", "softmax.png") if f in figures]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0 1.4em}
th,td{border:1px solid #ccc;padding:.3em .7em;text-align:left;font-variant-numeric:tabular-nums}
th{background:#f3f3f3}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
.verdict{background:#f6f8fa;border-left:4px solid #1f77b4;padding:.8em 1em}
.synthetic{color:#b00;font-weight:bold}
figcaption{color:#555;font-size:.9em}
"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _html_figure(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


def render_html(doc: Mapping[str, Any], figures: Mapping[str, tuple[str, bytes]], /) -> str:
    """The report as one self-contained HTML page: every figure is embedded as base64 PNG."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>sigmax compare</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>sigmax compare: sigmoid head vs softmax head</h1>",
        f"<p>sigmax {e(doc['sigmax_version'])}, estimators <code>{e(doc['estimators'])}</code>, "
        f"C = {doc['C']:g}, seed {doc['seed']}, run in {doc['wall_time_s']:.1f} s.</p>",
        f"<h2>Verdict</h2><p class='verdict'>{e(doc['verdict'])}</p>",
    ]
    for r in doc["tasks"]:
        title = e(_task_title(r))
        if r.get("synthetic"):
            title = title.replace("SYNTHETIC", "<span class='synthetic'>SYNTHETIC</span>")
        parts.append(f"<h2>{title}</h2><p>Source: {e(r['source'])}.</p>")
        if r.get("notes"):
            parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in r["notes"]) + "</ul>")
        for t, header, rows in _task_tables(r):
            parts.append(f"<h3>{e(t)}</h3>{_html_table(header, rows)}")
        for f in _figures_of(_slug(r["name"]), figures):
            parts.append(_html_figure(*figures[f]))
    parts.append("<h2>The two links</h2>")
    parts += [_html_figure(*figures[f]) for f in ("sigmoid.png", "softmax.png") if f in figures]
    parts.append("</body></html>")
    return "\n".join(parts)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_report(
    out: str | Path, doc: Mapping[str, Any], figures: Mapping[str, tuple[str, bytes]], /
) -> Path:
    """Write report.html, report.md, results.json and the PNGs into `out`, atomically.

    Returns the absolute path of the folder.
    """
    with atomic_dir(out) as tmp:
        for name, (_, png) in figures.items():
            (tmp / name).write_bytes(png)
        (tmp / "results.json").write_text(
            json.dumps(doc, indent=2, default=_json_default, allow_nan=True) + "\n",
            encoding="utf-8",
        )
        (tmp / "report.md").write_text(render_markdown(doc, figures), encoding="utf-8")
        (tmp / "report.html").write_text(render_html(doc, figures), encoding="utf-8")
    return Path(out).absolute()
