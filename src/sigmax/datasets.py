"""Bundled data for the default ``sigmax compare`` run, and CSV/Parquet loading with clear errors.

Every problem with a user's file is a :class:`DataError` (a `ValueError`) whose message is one
line that says what is wrong and where: the file, the line number of a ragged row, the columns
that exist when a target is missing, the count and columns of NaN or inf values. The command line
turns a `DataError` into that line on stderr and exit status 1.

The loaded data is a :class:`Dataset`: a float64 feature matrix, the target (integer-coded class
labels, or a 0/1 indicator matrix for multi-label data), the inferred task, and a feature
specification that `encode_features` replays on new data at prediction time.
"""

from __future__ import annotations

import csv
import io
import lzma
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DataError",
    "Dataset",
    "default_datasets",
    "encode_features",
    "infer_task",
    "load_breast_cancer",
    "load_digits",
    "load_table",
    "load_yeast",
    "make_synthetic_multilabel",
    "read_table",
]

#: Cell values read as missing in a CSV file (compared after lower-casing and stripping).
NA_TOKENS = frozenset({"", "na", "nan", "null", "none", "n/a", "#n/a"})
#: A non-numeric feature column with more distinct values than this is an error, not one-hot.
MAX_ONEHOT_LEVELS = 50
_SNIFF_BYTES = 1 << 16


class DataError(ValueError):
    """A problem with the user's data or files, worded as one line for the command line."""


@dataclass
class Dataset:
    """A feature matrix, its target and what was inferred about them.

    Attributes
    ----------
    name : str
        Short name shown in tables (``"breast_cancer"``, a file name, ...).
    X : ndarray of float64, shape (n_samples, n_features)
    y : ndarray, shape (n_samples,) or (n_samples, n_labels)
        Class labels for binary and multi-class data (the original values, sorted in
        `classes`), or a 0/1 ``int8`` indicator matrix for multi-label data.
    task : {"binary", "multiclass", "multilabel"}
    feature_names : list of str
        Names of the columns of `X` (after one-hot encoding).
    target_names : list of str
        The target column(s); for multi-label data, one name per label.
    classes : ndarray
        Sorted distinct labels (binary/multi-class), or `target_names` (multi-label).
    source : str
        Where the data came from, with a citation for bundled data.
    synthetic : bool
        True for generated data; reports label it SYNTHETIC.
    notes : list of str
        What was inferred or changed while loading, for the user to read.
    feature_spec : list of dict
        How to rebuild `X` from raw columns: ``{"name", "kind": "numeric"}`` or
        ``{"name", "kind": "onehot", "levels": [...]}``.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list[str]
    target_names: list[str]
    classes: np.ndarray
    source: str = ""
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)
    feature_spec: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        """Number of classes (binary/multi-class) or labels (multi-label)."""
        return len(self.classes)


# --------------------------------------------------------------------------- bundled data


def _from_sklearn(name: str, bunch: Any, task: str, source: str) -> Dataset:
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target)
    classes = np.unique(y)
    names = [str(f) for f in getattr(bunch, "feature_names", range(X.shape[1]))]
    return Dataset(
        name=name,
        X=X,
        y=y,
        task=task,
        feature_names=names,
        target_names=["target"],
        classes=classes,
        source=source,
        feature_spec=[{"name": n, "kind": "numeric"} for n in names],
    )


def load_breast_cancer() -> Dataset:
    """Wisconsin diagnostic breast cancer (569 x 30, binary), as shipped with scikit-learn.

    Examples
    --------
    >>> ds = load_breast_cancer()
    >>> ds.X.shape, ds.task, ds.classes.tolist()
    ((569, 30), 'binary', [0, 1])
    """
    from sklearn import datasets

    return _from_sklearn(
        "breast_cancer",
        datasets.load_breast_cancer(),
        "binary",
        "scikit-learn's load_breast_cancer (UCI Breast Cancer Wisconsin Diagnostic; "
        "Street, Wolberg and Mangasarian, 1993)",
    )


def load_digits() -> Dataset:
    """Handwritten digits (1797 x 64, 10 classes), as shipped with scikit-learn.

    Examples
    --------
    >>> ds = load_digits()
    >>> ds.X.shape, ds.task, ds.n_classes
    ((1797, 64), 'multiclass', 10)
    """
    from sklearn import datasets

    return _from_sklearn(
        "digits",
        datasets.load_digits(),
        "multiclass",
        "scikit-learn's load_digits (UCI Optical Recognition of Handwritten Digits; "
        "Alpaydin and Kaynak, 1998)",
    )


def _yeast_resource() -> Any:
    return resources.files("sigmax").joinpath("data", "yeast.npz.xz")


def load_yeast() -> Dataset:
    """Yeast gene functions (2417 x 103, 14 labels, multi-label), bundled with sigmax.

    The file is a copy of the one that the ``river`` package ships (BSD 3-Clause), stored
    exactly; ``sigmax/data/yeast.README.txt`` gives its provenance, licence and citations
    (Elisseeff and Weston, 2002; MULAN, Tsoumakas et al., 2011).

    Examples
    --------
    >>> ds = load_yeast()
    >>> ds.X.shape, ds.y.shape, ds.task
    ((2417, 103), (2417, 14), 'multilabel')
    >>> round(float(ds.y.sum(axis=1).mean()), 3)  # labels per gene
    4.237
    """
    raw = lzma.decompress(_yeast_resource().read_bytes())
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        X = z["X_micro"] / 1e6
        n_labels = int(z["n_labels"])
        Y = np.unpackbits(z["Y_packed"], axis=1, count=n_labels).astype(np.int8)
        features = [str(s) for s in z["feature_names"]]
        labels = [str(s) for s in z["label_names"]]
    return Dataset(
        name="yeast",
        X=X,
        y=Y,
        task="multilabel",
        feature_names=features,
        target_names=labels,
        classes=np.asarray(labels),
        source="Yeast (Elisseeff and Weston, 2002; MULAN), bundled from the river package "
        "(BSD 3-Clause); see sigmax/data/yeast.README.txt",
        feature_spec=[{"name": n, "kind": "numeric"} for n in features],
    )


def make_synthetic_multilabel(*, random_state: int = 0) -> Dataset:
    """A SYNTHETIC multi-label set, 2000 x 50 with 10 labels (``make_multilabel_classification``).

    Used only when the bundled Yeast file is missing.

    Examples
    --------
    >>> ds = make_synthetic_multilabel(random_state=0)
    >>> ds.synthetic, ds.y.shape
    (True, (2000, 10))
    """
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(
        n_samples=2000, n_features=50, n_classes=10, n_labels=3, random_state=random_state
    )
    labels = [f"label{i}" for i in range(Y.shape[1])]
    names = [f"x{i}" for i in range(X.shape[1])]
    return Dataset(
        name="SYNTHETIC multilabel",
        X=X.astype(np.float64),
        y=Y.astype(np.int8),
        task="multilabel",
        feature_names=names,
        target_names=labels,
        classes=np.asarray(labels),
        source="SYNTHETIC: sklearn.datasets.make_multilabel_classification",
        synthetic=True,
        feature_spec=[{"name": n, "kind": "numeric"} for n in names],
    )


def default_datasets(*, random_state: int = 0) -> list[Dataset]:
    """The three data sets of a plain ``sigmax compare``: binary, multi-class, multi-label.

    Examples
    --------
    >>> [d.name for d in default_datasets()]
    ['breast_cancer', 'digits', 'yeast']
    """
    try:
        multilabel = load_yeast()
    except (FileNotFoundError, OSError, lzma.LZMAError, KeyError, ValueError):
        multilabel = make_synthetic_multilabel(random_state=random_state)
        multilabel.notes.append("bundled Yeast data not found: using a SYNTHETIC multi-label set")
    return [load_breast_cancer(), load_digits(), multilabel]


# --------------------------------------------------------------------------- reading files


def _check_path(path: Path) -> None:
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a CSV or Parquet file")


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in {".parquet", ".pq"}:
        return True
    with path.open("rb") as f:
        return f.read(4) == b"PAR1"


def _read_parquet(path: Path) -> dict[str, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading {path.name} needs pyarrow: pip install 'sigmax[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path} is not a readable Parquet file: {exc}") from None
    if table.num_rows == 0:
        raise DataError(f"{path} has no rows")
    out: dict[str, np.ndarray] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = column.to_pylist()
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[str(name)] = np.asarray(values, dtype=np.float64)
        else:
            out[str(name)] = np.asarray(["" if v is None else str(v) for v in values], dtype=object)
    return out


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    nul = data.find(b"\x00", 0, _SNIFF_BYTES)
    if nul >= 0:
        raise DataError(f"{path} is not a CSV text file (binary data at byte {nul})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not a CSV text file (not UTF-8: byte {exc.start} is {data[exc.start]:#04x})"
        ) from None
    if not text.strip():
        raise DataError(f"{path} is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:_SNIFF_BYTES], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
        while not header:
            header = next(reader)
        header = [h.strip() for h in header]
        width = len(header)
        rows: list[list[str]] = []
        for row in reader:
            if not row:
                continue
            if len(row) != width:
                raise DataError(
                    f"{path} line {reader.line_num}: expected {width} fields like the header, "
                    f"got {len(row)}"
                )
            rows.append(row)
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
    if width < 2 and not rows:
        raise DataError(f"{path} is not a CSV table (one column and no data rows)")
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    if width < 2:
        raise DataError(f"{path} has a single column {header[0]!r}: need features and a target")
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise DataError(f"{path}: column name {h!r} appears more than once in the header")
        seen.add(h)
    cells = np.asarray(rows, dtype=object)
    return {h: cells[:, j] for j, h in enumerate(header)}


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a CSV or Parquet file into ``{column: values}``.

    CSV cells come back as strings (object arrays); Parquet numeric columns as float64.

    Raises
    ------
    DataError
        The file is missing, a directory, binary or not UTF-8, empty, has a ragged row (with
        its line number), duplicated column names, or is an unreadable Parquet file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,b,y\\n1,2,0\\n3,4\\n")
    >>> read_table(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sigmax.datasets.DataError: ... line 3: expected 3 fields like the header, got 2
    """
    path = Path(path)
    _check_path(path)
    if _is_parquet(path):
        return _read_parquet(path)
    return _read_csv(path)


# --------------------------------------------------------------------------- encoding


def _to_float(values: np.ndarray) -> np.ndarray | None:
    """Values as float64, with the NA tokens as NaN; None if some cell is not a number."""
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    cleaned = ["nan" if str(v).strip().lower() in NA_TOKENS else str(v).strip() for v in values]
    try:
        return np.asarray(cleaned, dtype=np.float64)
    except ValueError:
        return None


def _levels(values: np.ndarray) -> list[str]:
    return sorted({str(v).strip() for v in values})


def encode_features(
    columns: Mapping[str, np.ndarray], spec: Sequence[Mapping[str, Any]], *, source: str = "data"
) -> np.ndarray:
    """Build the float64 feature matrix that `spec` describes from raw `columns`.

    Levels of a one-hot column that were not seen when the spec was made encode as all zeros.

    Raises
    ------
    DataError
        A column of `spec` is missing, a numeric column holds text, or the result holds NaN or inf.

    Examples
    --------
    >>> cols = {"a": np.array(["1", "2"], dtype=object), "c": np.array(["u", "v"], dtype=object)}
    >>> spec = [{"name": "a", "kind": "numeric"},
    ...         {"name": "c", "kind": "onehot", "levels": ["u", "v"]}]
    >>> encode_features(cols, spec)
    array([[1., 1., 0.],
           [2., 0., 1.]])
    """
    missing = [s["name"] for s in spec if s["name"] not in columns]
    if missing:
        raise DataError(
            f"{source} lacks feature column(s) {', '.join(map(repr, missing))}; "
            f"it has: {', '.join(columns)}"
        )
    parts: list[np.ndarray] = []
    for s in spec:
        values = columns[s["name"]]
        if s["kind"] == "numeric":
            num = _to_float(values)
            if num is None:
                bad = next(v for v in values if _to_float(np.asarray([v], dtype=object)) is None)
                raise DataError(
                    f"{source}: feature column {s['name']!r} must be numeric, found {bad!r}"
                )
            parts.append(num[:, None])
        else:
            text = np.asarray([str(v).strip() for v in values], dtype=object)
            parts.append(
                np.stack([(text == lev).astype(np.float64) for lev in s["levels"]], axis=1)
            )
    X = np.concatenate(parts, axis=1) if parts else np.empty((0, 0))
    _check_finite(X, _expanded_names(spec), source)
    return X


def _expanded_names(spec: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for s in spec:
        if s["kind"] == "numeric":
            names.append(s["name"])
        else:
            names.extend(f"{s['name']}={lev}" for lev in s["levels"])
    return names


def _check_finite(X: np.ndarray, names: Sequence[str], source: str) -> None:
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    n_nan = int(np.isnan(X).sum())
    n_inf = int(bad.sum()) - n_nan
    per_col = bad.sum(axis=0)
    cols = [f"{names[int(j)]} ({int(per_col[j])})" for j in np.flatnonzero(per_col)]
    shown = ", ".join(cols[:10]) + (f", and {len(cols) - 10} more" if len(cols) > 10 else "")
    raise DataError(
        f"{source}: features hold {n_nan} NaN/missing and {n_inf} inf values, "
        f"in columns: {shown}; drop or impute them first"
    )


def infer_task(y: np.ndarray) -> str:
    """``"binary"``, ``"multiclass"`` or ``"multilabel"`` from the shape and values of `y`.

    A 1-D target with two distinct values is binary, with more it is multi-class; a 2-D 0/1
    matrix is multi-label.

    Raises
    ------
    DataError
        Fewer than two classes, or a 2-D target that is not 0/1.

    Examples
    --------
    >>> infer_task(np.array([0, 1, 1])), infer_task(np.array(["a", "b", "c"]))
    ('binary', 'multiclass')
    >>> infer_task(np.array([[0, 1], [1, 1]]))
    'multilabel'
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        if not np.isin(y, [0, 1]).all():
            raise DataError("a multi-label target must hold only 0 and 1")
        return "multilabel"
    n = len(np.unique(y.reshape(-1)))
    if n < 2:
        raise DataError(f"the target has a single class ('{y.reshape(-1)[0]}'); need at least two")
    return "binary" if n == 2 else "multiclass"


def _target_labels(name: str, values: np.ndarray, source: str) -> np.ndarray:
    num = _to_float(values)
    if num is not None:
        if np.isnan(num).any():
            first = int(np.flatnonzero(np.isnan(num))[0])
            raise DataError(
                f"{source}: target {name!r} has {int(np.isnan(num).sum())} missing values "
                f"(first at data row {first + 1})"
            )
        if np.all(num == np.round(num)) and np.all(np.abs(num) < 2**53):
            return num.astype(np.int64)
        return num
    text = np.asarray([str(v).strip() for v in values], dtype=object)
    empty = np.flatnonzero([t.lower() in NA_TOKENS for t in text])
    if len(empty):
        raise DataError(
            f"{source}: target {name!r} has {len(empty)} missing values "
            f"(first at data row {int(empty[0]) + 1})"
        )
    return text.astype(str)


def load_table(path: str | Path, target: Sequence[str] | None = None) -> Dataset:
    """Load a CSV or Parquet file and infer the task from its target column(s).

    Parameters
    ----------
    path : str or Path
        A CSV file (comma, semicolon or tab separated, UTF-8, with a header row) or a Parquet
        file (by suffix ``.parquet``/``.pq`` or by its magic bytes).
    target : sequence of str, optional
        Target column(s). One column with two values is binary, one with more is multi-class,
        several 0/1 columns are multi-label. Default: the last column.

    Returns
    -------
    Dataset
        ``notes`` says what was inferred: the task, a default target, one-hot encoded columns.

    Raises
    ------
    DataError
        Everything `read_table` raises, and: a target column that does not exist (the message
        lists the columns), a target with one class or missing values, several target columns
        that are not all 0/1, a non-numeric feature column with more than 50 distinct values,
        NaN or inf in the features (with counts and columns), no feature columns.

    Notes
    -----
    Non-numeric feature columns with at most 50 distinct values are one-hot encoded, with a note.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,colour,y\\n1,red,no\\n2,blue,yes\\n3,red,no\\n")
    >>> ds = load_table(p, ["y"])
    >>> ds.task, ds.feature_names, ds.y.tolist()
    ('binary', ['a', 'colour=blue', 'colour=red'], ['no', 'yes', 'no'])
    >>> load_table(p, ["label"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sigmax.datasets.DataError: target column 'label' not found in t.csv; columns are: a, colour, y
    """
    path = Path(path)
    columns = read_table(path)
    source = path.name
    notes: list[str] = []
    names = list(columns)
    if not target:
        target = [names[-1]]
        notes.append(f"no --target given: using the last column {names[-1]!r}")
    target = list(dict.fromkeys(target))
    missing = [t for t in target if t not in columns]
    if missing:
        raise DataError(
            f"target column {', '.join(map(repr, missing))} not found in {source}; "
            f"columns are: {', '.join(names)}"
        )
    feature_cols = [c for c in names if c not in target]
    if not feature_cols:
        raise DataError(f"{source}: no feature columns left besides the target(s)")

    spec: list[dict[str, Any]] = []
    encoded: list[str] = []
    for c in feature_cols:
        if _to_float(columns[c]) is not None:
            spec.append({"name": c, "kind": "numeric"})
            continue
        levels = _levels(columns[c])
        if len(levels) > MAX_ONEHOT_LEVELS:
            raise DataError(
                f"{source}: feature column {c!r} is not numeric and has {len(levels)} distinct "
                f"values (more than {MAX_ONEHOT_LEVELS} to one-hot encode); drop or encode it"
            )
        spec.append({"name": c, "kind": "onehot", "levels": levels})
        encoded.append(f"{c} ({len(levels)} levels)")
    if encoded:
        notes.append("one-hot encoded non-numeric feature columns: " + ", ".join(encoded))
    X = encode_features(columns, spec, source=source)

    if len(target) == 1:
        y = _target_labels(target[0], columns[target[0]], source)
        classes = np.unique(y)
        if len(classes) < 2:
            raise DataError(
                f"{source}: target {target[0]!r} has a single class ('{classes[0]}'); "
                "need at least two"
            )
        task = "binary" if len(classes) == 2 else "multiclass"
        shown = ", ".join(str(c) for c in classes[:5]) + (", ..." if len(classes) > 5 else "")
        notes.append(
            f"inferred task: {task} (target {target[0]!r} has {len(classes)} distinct values: "
            f"{shown})"
        )
    else:
        cols = []
        for t in target:
            num = _to_float(columns[t])
            if num is None:
                text = np.char.lower(np.asarray([str(v).strip() for v in columns[t]], dtype=str))
                if np.isin(text, ["true", "false"]).all():
                    num = (text == "true").astype(np.float64)
            if num is None or not np.isin(num, [0.0, 1.0]).all():
                raise DataError(
                    f"{source}: with several target columns each must hold only 0/1 "
                    f"(multi-label), but {t!r} does not"
                )
            if num.min() == num.max():
                raise DataError(
                    f"{source}: label column {t!r} has a single class (all {int(num[0])}); "
                    "each label needs both 0 and 1"
                )
            cols.append(num.astype(np.int8))
        y = np.stack(cols, axis=1)
        classes = np.asarray(target)
        task = "multilabel"
        notes.append(
            f"inferred task: multilabel ({len(target)} 0/1 target columns, "
            f"{float(y.sum(1).mean()):.2f} labels per row on average)"
        )
    return Dataset(
        name=path.stem,
        X=X,
        y=y,
        task=task,
        feature_names=_expanded_names(spec),
        target_names=target,
        classes=classes,
        source=str(path),
        notes=notes,
        feature_spec=spec,
    )
