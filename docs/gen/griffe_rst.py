"""Griffe extension: turn the reStructuredText bits of sigmax's numpydoc docstrings into Markdown.

The docstrings follow numpydoc, which is reStructuredText, while mkdocstrings renders Markdown.
Without this step ``.. math::`` blocks, ``:math:`` roles, simple tables and footnotes would show
up as raw markup on the API pages. Only the constructs the project uses are handled.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:math):`([^`]+)`")
_XREF = re.compile(r":(?:func|meth|class|mod|attr|obj|data|exc|py:\w+):`~?([^`]+)`")
_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
_BORDER = re.compile(r"^\s*=+(?:\s+=+)+\s*$")
_FOOTDEF = re.compile(r"^(\s*)\.\. \[(\w+)\]\s*(.*)$")
_FOOTREF = re.compile(r"\[(\w+)\]_")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _math_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent, first = m.group(1), m.group(2)
        body = [first] if first.strip() else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            if lines[i].strip():
                body.append(lines[i].strip())
            elif body and i + 1 < len(lines) and not lines[i + 1].startswith(indent + " "):
                break
            i += 1
        if out and out[-1].strip():
            out.append("")
        out.extend([indent + "$$", *(indent + b for b in body), indent + "$$", ""])
    return out


def _tables(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        border = lines[i]
        starts = [m.start() for m in re.finditer(r"=+", border)]
        rows: list[list[str]] = []
        n_borders = 0
        while i < len(lines) and lines[i].strip():
            line = lines[i]
            i += 1
            if _BORDER.match(line):
                n_borders += 1
                if n_borders == 3:
                    break
                continue
            cells = [
                line[a:b].strip() if a < len(line) else ""
                for a, b in zip(starts, [*starts[1:], None], strict=True)
            ]
            if rows and not cells[0]:
                rows[-1] = [f"{r} {c}".strip() for r, c in zip(rows[-1], cells, strict=True)]
            else:
                rows.append(cells)
        if not rows:
            continue
        indent = border[: len(border) - len(border.lstrip())]
        if out and out[-1].strip():
            out.append("")
        out.append(indent + "| " + " | ".join(rows[0]) + " |")
        out.append(indent + "|" + "---|" * len(rows[0]))
        out.extend(indent + "| " + " | ".join(r) + " |" for r in rows[1:])
        out.append("")
    return out


def _footnotes(lines: list[str]) -> list[str]:
    # Markdown footnotes continue on lines indented by four spaces, RST ones by any amount.
    out: list[str] = []
    body_indent: str | None = None
    for line in lines:
        m = _FOOTDEF.match(line)
        if m:
            body_indent = m.group(1)
            out.append(f"{m.group(1)}[^{m.group(2)}]: {m.group(3)}")
        elif body_indent is not None and line.startswith(body_indent + " ") and line.strip():
            out.append(body_indent + "    " + line.strip())
        else:
            body_indent = None if not line.strip() else body_indent
            out.append(line)
    return out


def _runtime_docstring(obj: griffe.Object) -> str | None:
    try:
        target: Any = importlib.import_module(obj.module.path)
        for part in (
            obj.path[len(obj.module.path) + 1 :].split(".") if obj.path != obj.module.path else []
        ):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    doc = getattr(target, "__doc__", None)
    return inspect.cleandoc(doc) if doc else None


def rst_to_markdown(text: str) -> str:
    """Convert the reStructuredText constructs used in sigmax docstrings to Markdown."""
    lines = _tables(_math_blocks(text.splitlines()))
    lines = _footnotes(lines)
    text = "\n".join(lines)
    text = _FOOTREF.sub(r"[^\1]", text)
    text = _ROLE.sub(lambda m: "$" + m.group(1) + "$", text)
    return _XREF.sub(r"`\1`", text)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring once the object tree is loaded, and keep to the public API.

    The API is read from the source, but some docstrings are templates filled in at import
    time (a shared Parameters block); those are taken from the imported object instead. A
    module's ``__all__`` is its public API, so members outside it are dropped.
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for module in _modules(pkg):
            exports = module.exports
            if exports is None:
                continue
            names = {e if isinstance(e, str) else e.name for e in exports}
            for name in [n for n in module.members if n not in names]:
                member = module.members[name]
                if member.is_alias or not member.is_module:
                    del module.members[name]

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.is_alias or obj.docstring is None:
            return
        text = obj.docstring.value
        if _PLACEHOLDER.search(text):
            text = _runtime_docstring(obj) or text
        obj.docstring.value = rst_to_markdown(text)


def _modules(module: griffe.Module) -> list[griffe.Module]:
    found = [module]
    for member in list(module.members.values()):
        if not member.is_alias and member.is_module:
            found.extend(_modules(member))  # type: ignore[arg-type]
    return found
