"""Atomic writes: a failed run never leaves a half-written file or report folder behind.

Files are written to a temporary file in the destination's folder and moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows. A report folder is built as a hidden
temporary folder next to its destination and swapped in with two renames.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sigmax.datasets import DataError

__all__ = ["atomic_dir", "atomic_write_bytes", "check_report_dest", "check_writable_dir"]

#: Files whose presence marks a folder as a sigmax report that may be replaced.
REPORT_MARKERS = ("results.json", "report.html", "report.md")


def check_writable_dir(folder: Path, /) -> None:
    """Raise `DataError` unless files can be created in `folder` (which must exist).

    Examples
    --------
    >>> check_writable_dir(Path("/nonexistent-sigmax-dir"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sigmax.datasets.DataError: cannot write to /nonexistent-sigmax-dir: ...
    """
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".sigmax-probe-")
    except OSError as exc:
        raise DataError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def atomic_write_bytes(path: str | Path, data: bytes, /) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`.

    Raises
    ------
    DataError
        The folder does not exist or is not writable.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.txt"
    >>> atomic_write_bytes(p, b"ok"); p.read_bytes()
    b'ok'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_report_dest(dest: str | Path, /) -> Path:
    """Check that a report folder can be written at `dest`; return its absolute path.

    Raises
    ------
    DataError
        `dest` is a file, a non-empty folder that is not a previous report, or its parent is
        missing or not writable.
    """
    dest = Path(dest).absolute()
    parent = dest.parent
    if dest.exists() and not dest.is_dir():
        raise DataError(f"--out {dest} exists and is not a folder")
    if (
        dest.is_dir()
        and any(dest.iterdir())
        and not any((dest / m).exists() for m in REPORT_MARKERS)
    ):
        raise DataError(
            f"--out {dest} is a non-empty folder that is not a sigmax report; not replacing it"
        )
    if parent.exists() and not parent.is_dir():
        raise DataError(f"cannot write to {dest}: {parent} is a file, not a folder")
    if not parent.is_dir():
        raise DataError(f"cannot write to {dest}: the folder {parent} does not exist")
    check_writable_dir(parent)
    return dest


@contextlib.contextmanager
def atomic_dir(dest: str | Path, /) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `dest`, on error it is removed.

    An existing `dest` is replaced only if it is empty or a previous report (it holds
    ``results.json``, ``report.html`` or ``report.md``), so a mistyped ``--out`` never deletes
    unrelated files.

    Raises
    ------
    DataError
        `dest` is a file, a folder that is not a report, or its parent is missing or not
        writable. Checked before the body runs, so a long computation does not start in vain.
    """
    dest = check_report_dest(dest)
    parent = dest.parent
    try:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.tmp-"))
    except OSError as exc:
        raise DataError(f"cannot write to {parent}: {exc.strerror or exc}") from None
    try:
        # mkdtemp makes the folder private (0700); a report should get the umask's permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        yield tmp
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.old-"))
            os.replace(dest, old / "report")
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
