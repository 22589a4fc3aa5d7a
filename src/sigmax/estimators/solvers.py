r"""Solvers for the estimators: L-BFGS, Newton-CG, and minibatch SGD and Adam.

Every model hands a solver a flat parameter vector ``w`` and a function that returns the
objective and its gradient,

.. math:: f(w) = \frac{\sum_i s_i\,\ell_i(w)}{\sum_i s_i} + \frac{\lVert W\rVert^2}{2\,C\sum_i s_i},

the weighted mean loss plus scikit-learn's L2 scaling (the intercepts are not penalized).
Full-batch solvers come from SciPy; the minibatch loop is here because it must stream data
(NumPy slices or Dask chunks) and support ``partial_fit``.

Examples
--------
>>> import numpy as np
>>> from sigmax.estimators.solvers import lbfgs
>>> res = lbfgs(lambda w: (float(w @ w), 2 * w), np.ones(3), tol=1e-8, max_iter=50)
>>> res.converged, float(np.abs(res.x).max()) < 1e-8
(True, True)
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

__all__ = [
    "SOLVERS",
    "Adam",
    "Sgd",
    "SolverResult",
    "blas_threads",
    "convergence_warning",
    "lbfgs",
    "minibatch",
    "newton_cg",
]

#: The solvers every estimator accepts.
SOLVERS = ("lbfgs", "newton-cg", "sgd", "adam")

#: Below this many entries of X, one BLAS thread is faster than many: the per-call
#: synchronisation of a threaded GEMM costs more than the arithmetic (digits: 1797 x 64).
SMALL_PROBLEM_ELEMENTS = 2_000_000

ValueGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass
class SolverResult:
    """What a solver returns: the solution, its objective, iterations and convergence."""

    x: np.ndarray
    fun: float
    n_iter: int
    converged: bool
    message: str = ""
    loss_curve: list[float] = field(default_factory=list)


_controller: ThreadpoolController | None = None


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    # Scanning the loaded libraries costs ~5 ms, more than a whole small fit: do it once.
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _max_blas_threads() -> int:
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    counts = [int(lib["num_threads"]) for lib in _controller.info() if lib["user_api"] == "blas"]
    return max(counts, default=1)


def blas_threads(
    n_elements: int, probe: Callable[[], object] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """Choose the BLAS thread count for a fit: one thread unless more are clearly faster.

    Below 2 million entries of X, one thread, without measuring: a threaded GEMM on a small
    matrix spends more time waking and synchronising threads than computing (scikit-learn's
    `LogisticRegression` on digits is 12x slower with the default thread count on a busy
    machine). Above it, `probe` (one evaluation of the objective) is timed twice with one
    thread and twice with the default count; the default is kept only when its best time
    is under 0.7x the single thread's: on an idle many-core machine threads win, on a
    shared one they can lose tenfold, and erratically.
    """
    if n_elements < SMALL_PROBLEM_ELEMENTS:
        return _one_blas_thread()
    if probe is None or _max_blas_threads() <= 1:
        return contextlib.nullcontext()
    probe()  # warm up: first-touch page faults and BLAS buffers

    def best_of_two() -> float:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            probe()
            times.append(time.perf_counter() - t0)
        return min(times)

    with _one_blas_thread():
        t_one = best_of_two()
    t_many = best_of_two()
    if t_many < 0.7 * t_one:
        return contextlib.nullcontext()
    return _one_blas_thread()


def convergence_warning(owner: str, solver: str, detail: str, *, minibatch: bool) -> None:
    """Warn, with what to change, that `solver` stopped before converging."""
    if minibatch:
        advice = (
            "Raise max_iter (epochs), lower learning_rate_init, or scale the features "
            "(e.g. sklearn.preprocessing.StandardScaler)."
        )
    else:
        advice = (
            "Raise max_iter, scale the features (e.g. sklearn.preprocessing.StandardScaler), "
            "or lower C (stronger regularization)."
        )
    # Point the warning at the caller's line, however deep inside sigmax it was raised.
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(
        f"{owner}: solver={solver!r} did not converge: {detail}. {advice}",
        ConvergenceWarning,
        stacklevel=level,
    )


def lbfgs(
    fun: ValueGrad,
    x0: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    callback: Callable[[float], None] | None = None,
) -> SolverResult:
    """Minimize with SciPy's L-BFGS-B on a fused value-and-gradient function.

    Parameters
    ----------
    fun : callable ``fun(w) -> (value, grad)``
        The objective and its gradient, shape (n_params,), in one pass.
    x0 : ndarray, shape (n_params,)
    tol : float
        Stop when the max norm of the projected gradient is <= `tol`.
    max_iter : int
    callback : callable ``callback(value)``, optional
        Called after each iteration with the objective (progress bars).

    Returns
    -------
    SolverResult

    Notes
    -----
    The options are scikit-learn's (``gtol=tol``, ``ftol = 64 eps``, up to 50 line-search
    steps), so with the same objective both stop at the same point.
    """
    last = {"f": math.inf}

    def wrapped(w: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fun(w)
        last["f"] = f
        return f, g

    cb = None if callback is None else (lambda _xk: callback(last["f"]))
    res = optimize.minimize(
        wrapped,
        x0,
        method="L-BFGS-B",
        jac=True,
        callback=cb,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    converged = bool(res.status == 0)
    msg = "" if converged else f"{res.message} after {res.nit} iterations (max_iter={max_iter})"
    return SolverResult(res.x, float(res.fun), int(res.nit), converged, msg)


def newton_cg(
    fun: ValueGrad,
    hessp: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    callback: Callable[[float], None] | None = None,
) -> SolverResult:
    """Minimize with SciPy's Newton-CG trust-region method and exact Hessian-vector products.

    Parameters
    ----------
    fun : callable ``fun(w) -> (value, grad)``
    hessp : callable ``hessp(w, v) -> H(w) v``
        The exact Hessian of the objective at `w` times `v`, shape (n_params,).
    x0 : ndarray, shape (n_params,)
    tol : float
        Stop when the gradient's norm is <= `tol`.
    max_iter : int
    callback : callable ``callback(value)``, optional

    Returns
    -------
    SolverResult

    Notes
    -----
    SciPy's ``trust-ncg`` (Steihaug's truncated conjugate gradient) is used rather than the
    line-search ``Newton-CG``: near the optimum the objective changes by less than its
    rounding error, the Wolfe line search then fails, and the line-search variant stops with
    a gradient 1e-7 or so. The trust region stops when the gradient's norm is <= `tol`.
    """

    def cb(intermediate_result: optimize.OptimizeResult) -> None:
        if callback is not None:
            callback(float(intermediate_result.fun))

    with warnings.catch_warnings():
        # A stop at the rounding floor is reported once, by convergence_warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        res = optimize.minimize(
            fun,
            x0,
            method="trust-ncg",
            jac=True,
            hessp=hessp,
            callback=cb,
            options={"maxiter": max_iter, "gtol": tol},
        )
    g = res.jac
    gmax = float(np.max(np.abs(g))) if g.size else 0.0
    converged = bool(res.status == 0) or gmax <= tol
    msg = (
        ""
        if converged
        else (
            f"max |gradient| = {gmax:.3g} > tol={tol:g} after {res.nit} iterations "
            f"(max_iter={max_iter}): {res.message}"
        )
    )
    return SolverResult(res.x, float(res.fun), int(res.nit), converged, msg)


class Sgd:
    """Stochastic gradient descent with Nesterov momentum, in place on a flat vector."""

    def __init__(self, learning_rate: float, momentum: float = 0.9) -> None:
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.velocity: np.ndarray | None = None

    def step(self, w: np.ndarray, g: np.ndarray) -> None:
        if self.velocity is None or self.velocity.shape != w.shape:
            self.velocity = np.zeros_like(w)
        v = self.velocity
        v *= self.momentum
        v -= self.learning_rate * g
        w += self.momentum * v - self.learning_rate * g


class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction, in place on a flat vector."""

    def __init__(
        self,
        learning_rate: float,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        self.learning_rate = learning_rate
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None

    def step(self, w: np.ndarray, g: np.ndarray) -> None:
        if self.m is None or self.v is None or self.m.shape != w.shape:
            self.m, self.v, self.t = np.zeros_like(w), np.zeros_like(w), 0
        self.t += 1
        self.m *= self.beta_1
        self.m += (1 - self.beta_1) * g
        self.v *= self.beta_2
        self.v += (1 - self.beta_2) * g * g
        lr = self.learning_rate * math.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        w -= lr * self.m / (np.sqrt(self.v) + self.epsilon)


Batch = tuple[Any, Any, Any]


def minibatch(
    fun: Callable[[np.ndarray, Any, Any, Any], tuple[float, np.ndarray]],
    w: np.ndarray,
    epoch_batches: Callable[[], Iterable[Batch]],
    *,
    optimizer: Sgd | Adam,
    max_iter: int,
    tol: float,
    n_iter_no_change: int,
    validation_loss: Callable[[np.ndarray], float] | None = None,
    callback: Callable[[float], None] | None = None,
) -> SolverResult:
    """Run epochs of minibatch updates until the loss stops improving.

    Parameters
    ----------
    fun : callable ``fun(w, X_batch, target_batch, sw_batch) -> (value, grad)``
    w : ndarray
        Updated in place.
    epoch_batches : callable
        Returns the batches of one epoch (NumPy slices or computed Dask chunks).
    validation_loss : callable, optional
        With early stopping: the loss on held-out data. The best weights are restored.

    Notes
    -----
    As in scikit-learn's `MLPClassifier`, training stops when the monitored loss (the
    validation loss with early stopping, else the mean training loss of the epoch) has not
    improved by more than `tol` for `n_iter_no_change` consecutive epochs.
    """
    best = math.inf
    best_w = w.copy()
    no_improve = 0
    curve: list[float] = []
    converged = False
    n_iter = 0
    for epoch in range(max_iter):
        total, count = 0.0, 0
        for Xb, Tb, swb in epoch_batches():
            value, g = fun(w, Xb, Tb, swb)
            optimizer.step(w, g)
            nb = Xb.shape[0]
            total += value * nb
            count += nb
        n_iter = epoch + 1
        train_loss = total / max(count, 1)
        curve.append(train_loss)
        monitored = train_loss if validation_loss is None else validation_loss(w)
        if callback is not None:
            callback(monitored)
        if not np.isfinite(monitored):
            break
        if monitored < best - tol:
            no_improve = 0
        else:
            no_improve += 1
        if monitored < best:
            best = monitored
            best_w[...] = w
        if no_improve >= n_iter_no_change:
            converged = True
            break
    if validation_loss is not None:
        w[...] = best_w
    msg = "" if converged else f"the loss still improved after max_iter={max_iter} epochs"
    return SolverResult(w, best, n_iter, converged, msg, curve)


def shuffled_batches(
    n: int, batch_size: int, rng: np.random.Generator | None
) -> Iterator[slice | np.ndarray]:
    """Index sets of one epoch: contiguous slices, or a fresh permutation when `rng` is set."""
    if rng is None:
        for start in range(0, n, batch_size):
            yield slice(start, min(start + batch_size, n))
        return
    perm = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]
