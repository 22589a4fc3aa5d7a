"""mpmath references for the function core and a ULP measure in the output dtype.

References are computed from the exactly rounded inputs (the values the library sees) at
``DPS`` decimal digits, in forms that do not cancel themselves: the max is pulled out of every
sum and ``log(1 + r)`` is always ``log1p(r)`` with ``r`` summed without the max term, so a
reference for ``log_softmax([0, -100])[0] = -3.72e-44`` keeps all its digits.

The accuracy cases shared by ``tests/test_accuracy.py`` and ``benchmarks/accuracy_table.py``
live here too, so the table and the test measure the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import mpmath
import numpy as np

DPS = 80
FUNCTIONS = ("sigmoid", "log_sigmoid", "softmax", "log_softmax", "logsumexp")
DTYPES = (np.float16, np.float32, np.float64)
#: The bound each dtype is held to (tests/test_accuracy.py).
BOUND = {np.float16: 1.0, np.float32: 1.0, np.float64: 3.0}

mp = mpmath.mp


def _mpf(v: float) -> mpmath.mpf:
    return mp.mpf(float(v))


# --------------------------------------------------------------------------------------------
# References (elementwise: 1-d arrays of float64 values; rows: 1-d arrays)
# --------------------------------------------------------------------------------------------


def ref_sigmoid(x: np.ndarray) -> list:
    with mp.workdps(DPS):
        out = []
        for v in x.tolist():
            if np.isnan(v):
                out.append(mp.nan)
            elif np.isinf(v):
                out.append(mp.mpf(1 if v > 0 else 0))
            else:
                out.append(1 / (1 + mp.exp(-_mpf(v))))
        return out


def ref_log_sigmoid(x: np.ndarray) -> list:
    with mp.workdps(DPS):
        out = []
        for v in x.tolist():
            if np.isinf(v):
                out.append(mp.mpf(0) if v > 0 else mp.mpf("-inf"))
                continue
            z = _mpf(v)
            # Both branches take log1p of a term <= 1, so nothing cancels.
            out.append(-mp.log1p(mp.exp(-z)) if z >= 0 else z - mp.log1p(mp.exp(z)))
        return out


def _row_parts(row: np.ndarray) -> tuple[mpmath.mpf, list, int, mpmath.mpf]:
    """``(m, d, j, rest)``: the max, the exact differences, the argmax, and the sum of
    ``exp(d)`` over every entry except the one at ``j``."""
    vals = [_mpf(v) for v in row.tolist()]
    j = int(np.argmax(row))
    m = vals[j]
    d = [v - m for v in vals]
    rest = mp.fsum(mp.exp(e) for i, e in enumerate(d) if i != j)
    return m, d, j, rest


def ref_softmax(row: np.ndarray) -> list:
    with mp.workdps(DPS):
        _, d, _, rest = _row_parts(row)
        den = 1 + rest
        return [mp.exp(e) / den for e in d]


def ref_log_softmax(row: np.ndarray) -> list:
    with mp.workdps(DPS):
        _, d, _, rest = _row_parts(row)
        lse = mp.log1p(rest)
        return [e - lse for e in d]


def ref_logsumexp(row: np.ndarray) -> list:
    with mp.workdps(DPS):
        m, _, _, rest = _row_parts(row)
        return [m + mp.log1p(rest)]


REFERENCES: dict[str, Callable[[np.ndarray], list]] = {
    "sigmoid": ref_sigmoid,
    "log_sigmoid": ref_log_sigmoid,
    "softmax": ref_softmax,
    "log_softmax": ref_log_softmax,
    "logsumexp": ref_logsumexp,
}
ELEMENTWISE = ("sigmoid", "log_sigmoid")


# --------------------------------------------------------------------------------------------
# ULPs in the output dtype
# --------------------------------------------------------------------------------------------


def ulp_errors(got: np.ndarray, ref: list, dtype: type) -> np.ndarray:
    """The error of each entry of `got` in ULPs of `ref`'s magnitude in `dtype`.

    The ULP of a value with binary exponent ``e`` is ``2**(max(e, minexp) - nmant)``, so
    subnormals are measured in the subnormal spacing. A reference that is exactly 0, infinite
    or NaN must be matched exactly (error 0, else ``inf``); a reference beyond the dtype's
    largest finite value must come back as ``inf`` of its sign.
    """
    fi = np.finfo(dtype)
    big = mp.mpf(float(fi.max)) + mp.ldexp(1, int(fi.maxexp) - int(fi.nmant) - 2)
    got = np.asarray(got, dtype=np.float64).ravel()
    errs = np.empty(got.size)
    with mp.workdps(DPS):
        for i, (g, r) in enumerate(zip(got.tolist(), ref, strict=True)):
            if mp.isnan(r) or np.isnan(g):
                errs[i] = 0.0 if (mp.isnan(r) and np.isnan(g)) else np.inf
            elif mp.isinf(r) or abs(r) >= big:
                errs[i] = 0.0 if (np.isinf(g) and (g > 0) == (r > 0)) else np.inf
            elif r == 0:
                errs[i] = 0.0 if g == 0 else np.inf
            elif np.isinf(g):
                errs[i] = np.inf
            else:
                e = int(mp.floor(mp.log(abs(r), 2)))
                # mp.log can land one below an exact power of two; fix the exponent.
                if mp.ldexp(1, e + 1) <= abs(r):
                    e += 1
                ulp = mp.ldexp(1, max(e, int(fi.minexp)) - int(fi.nmant))
                errs[i] = float(abs(_mpf(g) - r) / ulp)
    return errs


def ulps_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between two arrays of one dtype in units of the last place, counting across
    zero (the number of representable values between them)."""
    it = np.int32 if a.dtype == np.float32 else np.int64
    ia, ib = a.view(it).astype(np.int64), b.view(it).astype(np.int64)
    top = np.int64(np.iinfo(it).min)
    ia = np.where(ia < 0, top - ia, ia)
    ib = np.where(ib < 0, top - ib, ib)
    return np.abs(ia - ib)


def max_ulp(got: np.ndarray, ref: list, dtype: type) -> float:
    """The largest error of `got` against `ref`, in ULPs of `dtype` (see `ulp_errors`)."""
    errs = ulp_errors(got, ref, dtype)
    return float(errs.max()) if errs.size else 0.0


# --------------------------------------------------------------------------------------------
# The accuracy cases
# --------------------------------------------------------------------------------------------


def _limit(dtype: type) -> float:
    """The largest |x| for which x and every difference of two such values is finite."""
    return float(np.finfo(dtype).max) / 2


def elementwise_cases(dtype: type, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Named 1-d inputs for sigmoid and log_sigmoid, exactly representable in `dtype`."""
    n = 300
    fi = np.finfo(dtype)
    for w in (1.0, 20.0, 100.0):
        yield f"uniform +-{w:g}", rng.uniform(-w, w, n)
    yield (
        "up to the overflow limit",
        np.concatenate(
            [
                rng.uniform(-1, 1, 100) * float(fi.max),
                np.sign(rng.uniform(-1, 1, 100))
                * np.exp(rng.uniform(0, np.log(float(fi.max)), 100)),
                [float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny)],
            ]
        ),
    )
    # Where sigmoid is subnormal: x below log(tiny) (sigmoid(-720) = 2.03e-313 in float64).
    lo, hi = np.log(float(fi.smallest_subnormal)), np.log(float(fi.tiny))
    yield "subnormal tail", rng.uniform(lo - 0.5, hi, n)
    # Where 1 - sigmoid(x) would cancel: sigmoid(x) near 1, log_sigmoid(x) tiny.
    yield "1 - sigmoid would cancel", rng.uniform(2.0, -np.log(float(fi.eps)) * 1.5, n)
    yield "small |x|", np.sign(rng.uniform(-1, 1, n)) * np.exp(rng.uniform(-30, 0, n))


def row_cases(dtype: type, rng: np.random.Generator) -> Iterator[tuple[str, list[np.ndarray]]]:
    """Named lists of 1-d rows for softmax, log_softmax and logsumexp."""
    fi = np.finfo(dtype)
    for w in (1.0, 20.0, 100.0):
        yield f"uniform +-{w:g}", [rng.uniform(-w, w, k) for k in (2, 3, 10, 50, 100)]
    lim = _limit(dtype)
    yield (
        "up to the overflow limit",
        [
            rng.uniform(-1, 1, 10) * lim,
            np.array([lim, lim * 0.999, -lim]),
            np.array([float(fi.max), float(fi.max) * 0.5]),
            rng.uniform(0.9, 1.0, 8) * lim,
        ],
    )
    # A large common offset: x - max(x) must not be rounded (the spacing here is 1/32).
    offset = 2.0 ** (int(fi.nmant) - 5)
    yield "large common offset", [offset + rng.uniform(-20, 20, k) for k in (2, 5, 30)]
    # One dominant logit: the others' probabilities are 1e-30 and below, down to the subnormal
    # range of the dtype.
    depth = -np.log(float(fi.smallest_subnormal))
    gaps = [70.0, 100.0, depth - 5, depth - 0.5]
    yield (
        "one dominant logit",
        [np.concatenate([[0.0], -rng.uniform(g, g + 3, 9)]) for g in gaps if g < depth]
        + [np.array([0.0, -100.0]), np.array([3.5, 3.5 - depth + 1.0, 3.5 - 70.0])],
    )
    yield "equal logits", [np.full(k, c) for k, c in ((2, 0.0), (3, 7.25), (10, -300.0), (7, 1e4))]
    yield (
        "long rows (2 to 10,000 entries)",
        [
            rng.uniform(-5, 5, 2),
            rng.uniform(-5, 5, 1_000),
            rng.standard_normal(10_000) * 3,
            # Rows of a few hundred entries, where NumPy's 8 running sums lost up to 3.3 ULP.
            *(rng.standard_normal(200) * 5 for _ in range(6)),
        ],
    )
    # A block of rows of 31: the NumPy path sums short rows transposed, one row of the block
    # after another, which once cost float64 log_softmax 4 ULP (a lone row was exact).
    yield "a block of rows of 31", [rng.standard_normal(31) * 10 for _ in range(60)]
    # logsumexp near 0 is ill-conditioned (m and log1p(rest) cancel); softmax rows near 2 to 10
    # entries around 0 exercise it.
    yield (
        "logsumexp near 0",
        [
            np.array([-0.5, -0.9]),
            rng.uniform(-3, -1, 5),
            np.log(rng.dirichlet(np.ones(4))) + rng.uniform(-1e-3, 1e-3, 4),
        ],
    )


def measure(
    name: str, dtype: type, rng: np.random.Generator
) -> Iterator[tuple[str, float, np.ndarray]]:
    """Yield ``(case, max_ulp, worst_input)`` for function `name` in `dtype`."""
    import sigmax

    fn = getattr(sigmax, name)
    ref_fn = REFERENCES[name]
    if name in ELEMENTWISE:
        for case, raw in elementwise_cases(dtype, rng):
            with np.errstate(over="ignore"):
                x = raw.astype(dtype)
            x = x[np.isfinite(x)]
            got = np.asarray(fn(x))
            assert got.dtype == dtype
            errs = ulp_errors(got, ref_fn(x.astype(np.float64)), dtype)
            yield case, float(errs.max()), x[[int(np.argmax(errs))]]
        return
    for case, rows in row_cases(dtype, rng):
        worst, worst_row = 0.0, rows[0]
        with np.errstate(over="ignore"):
            finite = [r.astype(dtype) for r in rows if np.all(np.isfinite(r.astype(dtype)))]
        # Each row alone, and the rows of one length together as a block: a block takes
        # other paths (rows transposed, several rows to a kernel call) than a lone row.
        block = None
        if len(finite) > 1 and len({r.shape for r in finite}) == 1:
            block = np.asarray(fn(np.stack(finite)))
        for i, row in enumerate(finite):
            ref = ref_fn(row.astype(np.float64))
            got = np.asarray(fn(row))
            assert got.dtype == dtype
            err = max_ulp(got, ref, dtype)
            if block is not None:
                err = max(err, max_ulp(block[i], ref, dtype))
            if err >= worst:
                worst, worst_row = err, row
        yield case, worst, worst_row


def near_zero_rows(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Rows whose logsumexp nearly cancels: ``m < 0`` and ``log1p(rest)`` of the same size."""
    rows = []
    for i in range(n):
        k = int(rng.integers(2, 12))
        if i % 2:
            rows.append(np.log(rng.dirichlet(np.ones(k) * rng.uniform(0.1, 3))))
        else:
            head = rng.uniform(-1e-2, 1e-2) * rng.choice([1, 10, 100])
            rows.append(np.concatenate([[head], rng.uniform(-40, -1, k)]))
    return rows


def near_zero_logsumexp_errors(
    lse: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator, n: int = 400
) -> tuple[float, float]:
    """float64 logsumexp where it cancels: ``(max ULP over the rows with
    |r| >= 2**-10 * max(|m|, log1p(rest)), max absolute error in ulp(max(|m|, log1p(rest))))``.
    """
    rows = near_zero_rows(rng, n)
    width = max(r.size for r in rows)
    # As one block padded with -inf (the IEEE path of a block), and in blocks of rows of one
    # length (the kernels for finite rows, which must find the rows that cancel themselves).
    padded = np.stack([np.pad(r, (0, width - r.size), constant_values=-np.inf) for r in rows])
    runs = [np.asarray(lse(padded)).tolist()]
    by_length = np.empty(len(rows))
    for k in {r.size for r in rows}:
        idx = [i for i, r in enumerate(rows) if r.size == k]
        by_length[idx] = np.asarray(lse(np.stack([rows[i] for i in idx])))
    runs.append(by_length.tolist())
    rel = absolute = 0.0
    with mp.workdps(DPS):
        for got in runs:
            for row, g in zip(rows, got, strict=True):
                ref = ref_logsumexp(row)[0]
                m = float(row.max())
                big = max(abs(m), abs(float(ref) - m))
                absolute = max(absolute, float(abs(_mpf(g) - ref)) / float(np.spacing(big)))
                if abs(float(ref)) >= 2.0**-10 * big:
                    rel = max(rel, max_ulp(np.array([g]), [ref], np.float64))
    return rel, absolute
