"""The documentation site builds strictly, runs every guide example, and documents every name.

Building the site executes every ``exec="on"`` code block of the guide (markdown-exec), so a
guide example that raises, or a figure that fails to draw, fails this test. ``--strict`` also
turns broken links, bad cross-references and pages missing from the nav into failures.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sigmax

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or not (ROOT / "mkdocs.yml").exists(),
    reason="needs the docs extra (mkdocs) and a source checkout",
)


def _build(out: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg", "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"


def _resolves(name: str) -> bool:
    try:
        getattr(sigmax, name)
    except (AttributeError, ImportError):
        return False
    return True


def _ids(pages: list[Path]) -> set[str]:
    ids: set[str] = set()
    for page in pages:
        ids.update(re.findall(r'id="(sigmax\.[\w.]+)"', page.read_text(encoding="utf-8")))
    return ids


# One test builds the site once: under pytest-xdist, separate tests sharing a fixture could
# each build it on a different worker.
@pytest.mark.slow
def test_site_builds_strictly_runs_the_guide_and_documents_every_name(tmp_path: Path) -> None:
    _build(tmp_path)

    reference = sorted((tmp_path / "reference").rglob("index.html"))
    documented = {i.rsplit(".", 1)[-1] for i in _ids(reference)}
    # A lazy estimator name whose module has not landed is the estimators' failure, not the
    # docs'; every name that resolves must be documented.
    public = [n for n in sigmax.__all__ if n != "__version__" and _resolves(n)]
    missing = sorted(n for n in public if n not in documented)
    assert not missing, f"public names without an API reference entry: {missing}"

    for page in reference:
        html = page.read_text(encoding="utf-8")
        for raw in (".. math::", ":math:`", ":func:`", "=====  "):
            assert raw not in html, f"raw reStructuredText {raw!r} left in {page}"

    guide = sorted((tmp_path / "guide").rglob("index.html"))
    assert len(guide) == len(list((ROOT / "docs" / "guide").glob("*.md"))), guide
    for page in guide:
        assert "Traceback (most recent call last)" not in page.read_text(encoding="utf-8"), page
    for source in sorted((ROOT / "docs" / "guide").glob("*.md")):
        assert 'exec="on"' in source.read_text(encoding="utf-8"), f"{source} runs no code"


def test_rst_to_markdown_converts_the_constructs_the_docstrings_use() -> None:
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs/gen/griffe_rst.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = (
        "Sum.\n\n.. math:: a = b\n          + c\n\nSee :func:`sigmax.softmax` and :math:`x_i`"
        " [1]_.\n\n====  =====\nname  value\n====  =====\na     1\nb     2\n====  =====\n\n"
        ".. [1] A note\n   that goes on.\n"
    )
    md = mod.rst_to_markdown(text)
    assert "$$\na = b\n+ c\n$$" in md
    assert "`sigmax.softmax`" in md
    assert "$x_i$" in md
    assert "[^1]." in md
    assert "| name | value |\n|---|---|\n| a | 1 |\n| b | 2 |" in md
    assert "[^1]: A note\n    that goes on." in md
