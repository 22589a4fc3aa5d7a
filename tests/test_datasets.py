"""Bundled data, CSV/Parquet loading, task inference and every bad-input message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sigmax import datasets
from sigmax.datasets import DataError, encode_features, infer_task, load_table, read_table


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# --------------------------------------------------------------------------- bundled data


def test_breast_cancer_and_digits_match_sklearn():
    from sklearn import datasets as skd

    bc, dg = datasets.load_breast_cancer(), datasets.load_digits()
    X, y = skd.load_breast_cancer(return_X_y=True)
    np.testing.assert_array_equal(bc.X, X)
    np.testing.assert_array_equal(bc.y, y)
    assert (bc.task, dg.task, dg.n_classes) == ("binary", "multiclass", 10)
    assert dg.X.shape == (1797, 64)


def test_yeast_is_the_river_copy_stored_exactly():
    ds = datasets.load_yeast()
    assert ds.X.shape == (2417, 103)
    assert ds.y.shape == (2417, 14)
    assert ds.task == "multilabel"
    assert not ds.synthetic
    # Per-label counts of river 0.26.1's yeast.csv.gz (the file the bundle was made from).
    np.testing.assert_array_equal(
        ds.y.sum(axis=0), [762, 1038, 983, 862, 722, 597, 428, 480, 178, 253, 289, 1816, 1799, 34]
    )
    # Six-decimal values survive the int32 micro-unit encoding.
    np.testing.assert_array_equal(np.round(ds.X * 1e6) / 1e6, ds.X)
    assert ds.feature_names[0] == "Att1"
    assert ds.target_names[-1] == "Class14"


def test_yeast_licence_file_is_shipped():
    from importlib import resources

    text = resources.files("sigmax").joinpath("data", "yeast.README.txt").read_text()
    assert "BSD 3-Clause" in text
    assert "Elisseeff" in text


def test_default_datasets_fall_back_to_labelled_synthetic(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "_yeast_resource", lambda: tmp_path / "missing.npz.xz")
    sets = datasets.default_datasets()
    ml = sets[-1]
    assert ml.synthetic
    assert "SYNTHETIC" in ml.name
    assert "SYNTHETIC" in ml.source
    assert any("SYNTHETIC" in n for n in ml.notes)
    assert [d.task for d in sets] == ["binary", "multiclass", "multilabel"]


# --------------------------------------------------------------------------- inference


def test_infers_binary_multiclass_multilabel(tmp_path):
    p = _write(
        tmp_path,
        "d.csv",
        "x1,x2,cls,kind,l1,l2\n1,2,a,0,1,0\n2,3,b,1,1,1\n3,1,c,0,0,1\n4,4,a,1,0,0\n",
    )
    b = load_table(p, ["kind"])
    assert b.task == "binary"
    assert b.y.tolist() == [0, 1, 0, 1]
    m = load_table(p, ["cls"])
    assert m.task == "multiclass"
    assert m.classes.tolist() == ["a", "b", "c"]
    assert any("inferred task: multiclass" in n for n in m.notes)
    ml = load_table(p, ["l1", "l2"])
    assert ml.task == "multilabel"
    np.testing.assert_array_equal(ml.y, [[1, 0], [1, 1], [0, 1], [0, 0]])
    assert ml.feature_names == ["x1", "x2", "cls=a", "cls=b", "cls=c", "kind"]


def test_default_target_is_last_column_with_a_note(tmp_path):
    p = _write(tmp_path, "d.csv", "a,b,y\n1,2,0\n3,4,1\n")
    ds = load_table(p)
    assert ds.target_names == ["y"]
    assert any("last column 'y'" in n for n in ds.notes)


def test_semicolon_csv_and_blank_lines(tmp_path):
    p = _write(tmp_path, "e.csv", "a;b;y\n1.5;2;0\n\n3;4;1\n")
    np.testing.assert_array_equal(load_table(p, ["y"]).X, [[1.5, 2.0], [3.0, 4.0]])


def test_parquet_matches_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": [1.0, 2.0, 3.0], "c": ["u", "v", "u"], "y": [0, 1, 1]})
    pq.write_table(table, tmp_path / "d.parquet")
    # Parquet is also recognized by its magic bytes, whatever the suffix.
    (tmp_path / "d.bin").write_bytes((tmp_path / "d.parquet").read_bytes())
    csv = _write(tmp_path, "d.csv", "a,c,y\n1,u,0\n2,v,1\n3,u,1\n")
    want = load_table(csv, ["y"])
    for name in ("d.parquet", "d.bin"):
        got = load_table(tmp_path / name, ["y"])
        np.testing.assert_array_equal(got.X, want.X)
        np.testing.assert_array_equal(got.y, want.y)
        assert got.feature_names == want.feature_names


def test_infer_task():
    assert infer_task(np.array([3, 3, 5])) == "binary"
    assert infer_task(np.array([1, 2, 3])) == "multiclass"
    assert infer_task(np.array([[1, 0], [0, 1]])) == "multilabel"
    with pytest.raises(DataError, match="single class"):
        infer_task(np.array([7, 7]))
    with pytest.raises(DataError, match="only 0 and 1"):
        infer_task(np.array([[2, 0], [0, 1]]))


def test_encode_features_replays_spec_and_unknown_levels_are_zero():
    spec = [{"name": "a", "kind": "numeric"}, {"name": "c", "kind": "onehot", "levels": ["u"]}]
    cols = {"a": np.array(["1", "2"], dtype=object), "c": np.array(["u", "new"], dtype=object)}
    np.testing.assert_array_equal(encode_features(cols, spec), [[1.0, 1.0], [2.0, 0.0]])
    with pytest.raises(DataError, match=r"lacks feature column.*'a'.*it has: c"):
        encode_features({"c": cols["c"]}, spec)
    with pytest.raises(DataError, match="must be numeric, found 'x'"):
        encode_features({"a": np.array(["1", "x"], dtype=object), "c": cols["c"]}, spec)


# --------------------------------------------------------------------------- bad input


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)


def test_binary_and_non_utf8_files(tmp_path):
    (tmp_path / "junk.csv").write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=r"not a CSV text file \(binary data at byte 0"):
        read_table(tmp_path / "junk.csv")
    (tmp_path / "latin.csv").write_bytes("a,b\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8: byte 7 is 0xe9"):
        read_table(tmp_path / "latin.csv")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_table(tmp_path / "bad.parquet")


def test_empty_and_header_only(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read_table(_write(tmp_path, "e.csv", "\n\n"))
    with pytest.raises(DataError, match="header but no data rows"):
        read_table(_write(tmp_path, "h.csv", "a,b,y\n"))
    with pytest.raises(DataError, match="single column"):
        read_table(_write(tmp_path, "one.csv", "a\n1\n2\n"))
    with pytest.raises(DataError, match="'a' appears more than once"):
        read_table(_write(tmp_path, "dup.csv", "a,a,y\n1,2,3\n"))


def test_ragged_row_names_the_physical_line(tmp_path):
    p = _write(tmp_path, "r.csv", "a,b,y\n1,2,0\n\n3,4,1\n5,6\n")
    with pytest.raises(DataError, match=r"r\.csv line 5: expected 3 fields like the header, got 2"):
        read_table(p)
    p = _write(tmp_path, "long.csv", "a,b,y\n1,2,0,9\n")
    with pytest.raises(DataError, match="line 2: expected 3 fields like the header, got 4"):
        read_table(p)


def test_missing_target_lists_columns(tmp_path):
    p = _write(tmp_path, "d.csv", "a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(DataError, match=r"'label' not found in d\.csv; columns are: a, b, y"):
        load_table(p, ["label"])


def test_non_numeric_features_one_hot_with_note_or_error(tmp_path):
    p = _write(tmp_path, "d.csv", "a,colour,y\n1,red,0\n2,blue,1\n3,red,0\n")
    ds = load_table(p, ["y"])
    assert any(
        "one-hot encoded non-numeric feature columns: colour (2 levels)" in n for n in ds.notes
    )
    np.testing.assert_array_equal(ds.X, [[1, 0, 1], [2, 1, 0], [3, 0, 1]])
    rows = "\n".join(f"{i},id{i},{i % 2}" for i in range(60))
    p = _write(tmp_path, "ids.csv", "a,name,y\n" + rows + "\n")
    with pytest.raises(DataError, match="'name' is not numeric and has 60 distinct values"):
        load_table(p, ["y"])


def test_nan_and_inf_are_counted_per_column(tmp_path):
    p = _write(tmp_path, "d.csv", "a,b,c,y\n1,nan,1,0\ninf,2,2,1\n3,,3,0\n-inf,4,NA,1\n")
    msg = "4 NaN/missing and 2 inf values, in columns: a \\(2\\), b \\(2\\), c \\(1\\)"
    with pytest.raises(DataError, match=msg.replace("4 NaN", "3 NaN")):
        load_table(p, ["y"])


def test_target_problems(tmp_path):
    p = _write(tmp_path, "d.csv", "a,y,l1,l2,l3\n1,0,1,0,1\n2,0,0,2,1\n3,0,1,0,1\n")
    with pytest.raises(DataError, match="target 'y' has a single class \\('0'\\)"):
        load_table(p, ["y"])
    with pytest.raises(DataError, match=r"each must hold only 0/1.*'l2'"):
        load_table(p, ["l1", "l2"])
    with pytest.raises(DataError, match="label column 'l3' has a single class \\(all 1\\)"):
        load_table(p, ["l1", "l3"])
    p = _write(tmp_path, "m.csv", "a,y\n1,0\n2,\n3,1\n")
    with pytest.raises(
        DataError, match="target 'y' has 1 missing values \\(first at data row 2\\)"
    ):
        load_table(p, ["y"])
    p = _write(tmp_path, "only.csv", "y\n1\n")
    with pytest.raises(DataError):
        load_table(p, ["y"])
