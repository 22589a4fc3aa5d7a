"""Write BENCHMARKS.md from the files in ``benchmarks/results/``.

BENCHMARKS.md is derived: ``results/summary.md`` (the summary table, accuracy and GPU check,
kept by hand) followed by each benchmark's results file, with every heading outside code
blocks demoted one level. Edit the results files, then run::

    python benchmarks/build_benchmarks_md.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("functions", "losses", "estimators", "sampled")


def demote(text: str) -> str:
    """Add one ``#`` to every Markdown heading that is not inside a fenced code block."""
    out, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        out.append("#" + line if not fence and line.startswith("#") else line)
    return "\n".join(out)


def build() -> str:
    parts = [(RESULTS / "summary.md").read_text().rstrip("\n")]
    for name in SECTIONS:
        body = demote((RESULTS / f"{name}.md").read_text()).rstrip("\n")
        parts.append(f"<!-- from benchmarks/results/{name}.md -->\n{body}")
    return "\n\n\n".join(parts) + "\n"


def main() -> int:
    (ROOT / "BENCHMARKS.md").write_text(build())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
