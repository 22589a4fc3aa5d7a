"""Figures for the report and for ``sigmax plot``: matplotlib with the Agg backend.

Every function returns a :class:`matplotlib.figure.Figure` with labelled axes and a title, made
without pyplot's global state, so figures can be drawn in threads and never open a window.
`figure_png` turns one into PNG bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sigmax.functions import logsumexp, sigmoid, softmax

__all__ = [
    "figure_png",
    "plot_calibration",
    "plot_label_set_sizes",
    "plot_ovr_sums",
    "plot_regions",
    "plot_sigmoid",
    "plot_softmax",
]

HEAD_COLORS = {"sigmoid": "#1f77b4", "softmax": "#d62728"}


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def figure_png(fig: Any, /) -> bytes:
    """The figure as PNG bytes.

    Examples
    --------
    >>> figure_png(plot_sigmoid())[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _sigmoid_derivative(x: np.ndarray) -> np.ndarray:
    from sigmax import derivatives

    jvp = getattr(derivatives, "sigmoid_jvp", None)
    if jvp is not None:
        return np.asarray(jvp(x, np.ones_like(x)))
    # sigma'(x) = sigma(x) sigma(-x), without the cancellation of 1 - sigma(x).
    return np.asarray(sigmoid(x) * sigmoid(-x))


def plot_sigmoid() -> Any:
    r"""The sigmoid :math:`\sigma(x) = 1/(1+e^{-x})` and its derivative :math:`\sigma(x)\sigma(-x)`.

    Examples
    --------
    >>> fig = plot_sigmoid()
    >>> fig.axes[0].get_xlabel()
    'logit x'
    """
    x = np.linspace(-8, 8, 801)
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.plot(x, sigmoid(x), color=HEAD_COLORS["sigmoid"], lw=2, label=r"$\sigma(x)$")
    ax.plot(
        x, _sigmoid_derivative(x), color="#2ca02c", lw=2, ls="--", label=r"$\sigma'(x)$ (max 1/4)"
    )
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.axvline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("logit x")
    ax.set_ylabel("value")
    ax.set_title("Sigmoid and its derivative")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def plot_softmax(*, others: Sequence[float] = (-2.0, 0.0, 2.0, 4.0)) -> Any:
    r"""softmax_0 as a function of :math:`z_0` for several values of the other logits.

    .. math:: \operatorname{softmax}(z)_0 = \sigma\bigl(z_0 - \operatorname{logsumexp}(z_{1:})\bigr)

    Left: two classes, the other logit :math:`z_1 = c`; the curve is a sigmoid whose midpoint
    sits at :math:`z_0 = c`. Right: three classes with :math:`z_1 = z_2 = c`; the midpoint moves
    to :math:`c + \log 2`, the logsumexp of the others.

    Examples
    --------
    >>> fig = plot_softmax()
    >>> [ax.get_title() for ax in fig.axes]
    ['Two classes: other logit z1 = c', 'Three classes: z1 = z2 = c']
    """
    z0 = np.linspace(-8, 10, 901)
    fig = _figure(10.0, 4.0)
    axes = fig.subplots(1, 2, sharey=True)
    cmap = _cmap("viridis")
    for ax, n_other in zip(axes, (1, 2), strict=True):
        for i, c in enumerate(others):
            color = cmap(i / max(len(others) - 1, 1))
            z = np.column_stack([z0] + [np.full_like(z0, c)] * n_other)
            ax.plot(z0, softmax(z, axis=-1)[:, 0], color=color, lw=2, label=f"c = {c:g}")
            mid = float(logsumexp(np.full(n_other, c)))
            ax.plot([mid], [0.5], "o", color=color, ms=5)
        ax.axhline(0.5, color="0.6", lw=0.8)
        ax.set_xlabel("logit z0")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", title="other logit(s)")
    axes[0].set_ylabel("softmax(z)_0")
    axes[0].set_title("Two classes: other logit z1 = c")
    axes[1].set_title("Three classes: z1 = z2 = c")
    fig.suptitle("Softmax is a sigmoid whose midpoint (dots) is the logsumexp of the other logits")
    return fig


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def plot_calibration(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    /,
    *,
    title: str = "Reliability diagram",
    what: str = "P(positive)",
    n_bins: int = 15,
) -> Any:
    """Reliability diagram, one panel per head, with the ECE in each panel's title.

    Parameters
    ----------
    curves : mapping head -> (confidence, happened)
        For each head, the predicted probabilities of the event and whether it happened.
    title : str
    what : str
        What the confidence is, for the x label.
    n_bins : int, default=15

    Examples
    --------
    >>> rng = np.random.default_rng(0); p = rng.uniform(size=500)
    >>> fig = plot_calibration({"sigmoid": (p, rng.uniform(size=500) < p)})
    >>> fig.axes[0].get_ylabel()
    'observed frequency'
    """
    from sigmax.report.metrics import expected_calibration_error, reliability_curve

    fig = _figure(4.2 * len(curves) + 0.4, 4.4)
    axes = np.atleast_1d(fig.subplots(1, len(curves), sharey=True))
    for ax, (head, (conf, hit)) in zip(axes, curves.items(), strict=True):
        mean_conf, freq, count = reliability_curve(conf, hit, n_bins=n_bins)
        used = count > 0
        edges = np.linspace(0, 1, n_bins + 1)
        color = HEAD_COLORS.get(head, "0.3")
        ax.bar(
            edges[:-1][used],
            freq[used],
            width=1 / n_bins,
            align="edge",
            color=color,
            alpha=0.35,
            edgecolor=color,
            label="observed",
        )
        ax.plot(mean_conf[used], freq[used], "-", color=color, lw=1.2)
        # Marker area grows with the rows in the bin, so sparse, noisy bins read as such.
        sizes = 8 + 160 * np.sqrt(count[used] / count.max())
        ax.scatter(
            mean_conf[used],
            freq[used],
            s=sizes,
            color=color,
            zorder=3,
            label="bin mean (area ~ rows)",
        )
        ax.plot([0, 1], [0, 1], color="0.3", ls="--", lw=1, label="perfect")
        ece = expected_calibration_error(conf, hit, n_bins=n_bins)
        ax.set_title(f"{head} head (ECE {ece:.3f})")
        ax.set_xlabel(f"predicted {what}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    axes[0].set_ylabel("observed frequency")
    fig.suptitle(title)
    return fig


def plot_ovr_sums(
    sums: np.ndarray, /, *, title: str = "One-vs-rest sigmoid probability sums"
) -> Any:
    """Histogram of the per-row sums of one-vs-rest sigmoid probabilities (a softmax sums to 1).

    Examples
    --------
    >>> fig = plot_ovr_sums(np.array([0.7, 1.0, 1.2, 0.95]))
    >>> fig.axes[0].get_xlabel()
    'sum over classes of sigmoid(z_k)'
    """
    sums = np.asarray(sums, dtype=np.float64)
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    hi = max(2.0, float(sums.max()) * 1.05)
    ax.hist(sums, bins=np.linspace(0, hi, 61), color=HEAD_COLORS["sigmoid"], alpha=0.8)
    ax.axvline(1.0, color=HEAD_COLORS["softmax"], lw=2, label="softmax: always exactly 1")
    off = float(np.mean(np.abs(sums - 1) > 0.1))
    ax.set_xlabel("sum over classes of sigmoid(z_k)")
    ax.set_ylabel("number of test rows")
    ax.set_title(f"{title}\n{off:.0%} of rows are off by more than 0.1")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_label_set_sizes(
    true_sizes: np.ndarray, predicted: Mapping[str, np.ndarray], /, *, title: str = ""
) -> Any:
    """Bar chart of label-set sizes: the truth against each head's predicted sets.

    Examples
    --------
    >>> fig = plot_label_set_sizes(np.array([1, 2, 2]), {"softmax top-1": np.array([1, 1, 1])})
    >>> fig.axes[0].get_xlabel()
    'labels per row'
    """
    series = {"true label sets": np.asarray(true_sizes), **predicted}
    top = int(max(int(np.max(v)) for v in series.values()))
    k = np.arange(top + 1)
    fig = _figure(6.8, 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    colors = ["0.4", HEAD_COLORS["sigmoid"], HEAD_COLORS["softmax"], "#ff7f0e"]
    for i, (name, sizes) in enumerate(series.items()):
        frac = np.bincount(np.asarray(sizes, dtype=np.int64), minlength=top + 1) / len(sizes)
        ax.bar(
            k + (i - (len(series) - 1) / 2) * width, frac, width, label=name, color=colors[i % 4]
        )
    ax.set_xticks(k)
    ax.set_xlabel("labels per row")
    ax.set_ylabel("fraction of rows")
    ax.set_title(title or "Label-set sizes: a softmax picks one label per row")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return fig


def plot_regions(
    X2: np.ndarray,
    y: np.ndarray,
    heads: Mapping[str, Any],
    /,
    *,
    title: str = "Decision regions on the first two principal components",
    resolution: int = 200,
    ovr_sums: bool = True,
) -> Any:
    """Decision regions of each head on 2-D data, and the sum of the OvR sigmoid probabilities.

    Parameters
    ----------
    X2 : array, shape (n, 2)
        The 2-D projection (for example the first two principal components).
    y : array of int, shape (n,)
        Classes in ``[0, K)``.
    heads : mapping name -> callable
        For each head, a function from an (m, 2) grid to an (m, K) array of logits. A head named
        ``"sigmoid"`` also gets a panel of the sum of its sigmoid probabilities.
    resolution : int, default=200
        Grid points per axis.
    ovr_sums : bool, default=True
        Add the panel of OvR sigmoid sums (when a ``"sigmoid"`` head is given).

    Examples
    --------
    >>> X2 = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]); y = np.array([0, 1, 2])
    >>> W = np.eye(3, 2)
    >>> fig = plot_regions(X2, y, {"softmax": lambda G: G @ W.T}, resolution=20)
    >>> fig.axes[0].get_xlabel()
    'PC 1'
    """
    X2 = np.asarray(X2, dtype=np.float64)
    pad = 0.05 * (X2.max(axis=0) - X2.min(axis=0))
    lo, hi = X2.min(axis=0) - pad, X2.max(axis=0) + pad
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    n_classes = int(np.max(y)) + 1
    cmap = _cmap("tab10" if n_classes <= 10 else "tab20")
    ovr_sums = ovr_sums and "sigmoid" in heads
    panels = len(heads) + int(ovr_sums)
    fig = _figure(4.6 * panels, 4.6)
    axes = np.atleast_1d(fig.subplots(1, panels, sharex=True, sharey=True))
    extent = (lo[0], hi[0], lo[1], hi[1])
    for ax, (name, logits_fn) in zip(axes, heads.items(), strict=False):
        logits = np.asarray(logits_fn(grid))
        region = np.argmax(logits, axis=1).reshape(gx.shape)
        ax.imshow(
            region,
            origin="lower",
            extent=extent,
            aspect="auto",
            cmap=cmap,
            vmin=0,
            vmax=cmap.N - 1,
            alpha=0.35,
            interpolation="nearest",
        )
        ax.scatter(
            X2[:, 0], X2[:, 1], c=y, cmap=cmap, vmin=0, vmax=cmap.N - 1, s=6, lw=0, rasterized=True
        )
        rule = "argmax of sigmoids (OvR)" if name == "sigmoid" else "argmax of softmax"
        ax.set_title(f"{name} head: {rule}")
        ax.set_xlabel("PC 1")
    if ovr_sums:
        ax = axes[-1]
        sums = np.asarray(sigmoid(np.asarray(heads["sigmoid"](grid)))).sum(axis=1).reshape(gx.shape)
        im = ax.imshow(
            sums,
            origin="lower",
            extent=extent,
            aspect="auto",
            cmap="coolwarm",
            vmin=0.0,
            vmax=2.0,
        )
        ax.contour(gx, gy, sums, levels=[1.0], colors="k", linewidths=1)
        ax.set_title("sigmoid head: sum of OvR probabilities\n(black line: sum = 1)")
        ax.set_xlabel("PC 1")
        fig.colorbar(im, ax=ax, label="sum over classes")
    axes[0].set_ylabel("PC 2")
    fig.suptitle(title)
    return fig
