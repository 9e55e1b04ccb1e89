"""Layout of operator text: every line fits ``WIDTH`` columns (issue 14). Prose is wrapped with a hanging indent,
ARM ids are shortened to what an operator reads (the full ids stay in ``--json`` and plan files), a status line is
cut, tables keep their columns. The one home of these helpers: render (reports), progress (live and plain lines)
and the sweep use them."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

WIDTH = 100  # every line of operator text fits this many columns

# an ARM id inside prose (or a diff path): up to the first space, quote, bracket or comma
_ARM_ID = re.compile(r"/subscriptions/[^/\s'\"(),;\[\]]+(?:/[^/\s'\"(),;\[\]]+)+", re.IGNORECASE)
_BULLET = re.compile(r"(?:[-+=?! ]\s?\d+\. |\d+\. |\[\d+/\d+\] |[-!?=✓✗→•] )")


def one_line(text: Any) -> str:
    """Any text (an ARM message with CRLF-separated lists) as one line, runs of white space folded."""
    return " ".join(str(text or "").split())


def cut(text: str, width: int = WIDTH) -> str:
    """``text`` on one line of at most ``width`` characters (cut with … when longer): a status line."""
    one = " ".join(text.splitlines()) if "\n" in text or "\r" in text else text
    return one if len(one) <= width else one[: width - 1] + "…"


def first_line(e: BaseException, limit: int = 200) -> str:
    """An error's first line (its type when it has no text), at most ``limit`` characters."""
    lines = str(e).strip().splitlines()
    return cut(lines[0] if lines else type(e).__name__, limit)


def short_id(resource_id: str, width: int = 60) -> str:
    """An ARM id as an operator reads it: its resource group, then the type/name pairs without the provider
    namespaces (``rg-demo/…/snapshots/NAME``, ``rg-demo/…/virtualMachines/vm/extensions/ext``). Past ``width``
    the leading pairs go first; the resource group and the name stay. Anything else is returned as is."""
    m = re.fullmatch(r"/subscriptions/[^/]+(?:/resourceGroups/([^/]+))?((?:/[^/]+)+)", resource_id.rstrip("/"),
                     re.IGNORECASE)
    if m is None:
        return resource_id
    parts = m.group(2).strip("/").split("/")
    pairs: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i].lower() == "providers" and i + 1 < len(parts):
            i += 2
            continue
        pairs.append(parts[i])
        i += 1
    head = m.group(1) or "subscription"
    while len(pairs) > 2 and len(f"{head}/…/{'/'.join(pairs)}") > width:
        pairs = pairs[2:]
    return f"{head}/…/{'/'.join(pairs)}"


def short_ids(text: str) -> str:
    """Every ARM id in ``text`` shortened (``short_id``); the full ids stay in ``--json`` and the plan file."""
    def one(m: re.Match[str]) -> str:
        rid = m.group(0)
        tail = rid[len(rid.rstrip(".:")):]
        return short_id(rid[: len(rid) - len(tail)]) + tail

    return _ARM_ID.sub(one, text)


def fit(text: str, indent: str = "", hang: str | None = None, width: int = WIDTH) -> list[str]:
    """Prose fitted to ``width`` columns: ARM ids shortened, line breaks folded, wrapped with the first line after
    ``indent`` and the others after ``hang`` (``indent`` and four spaces unless given). A word longer than a line
    (a URL) is cut, so no line is ever wider."""
    hang = indent + "    " if hang is None else hang
    folded = re.sub(r"\s*\n\s*", " ", str(text).strip())  # a YAML paragraph's lines; aligned spaces stay
    return textwrap.wrap(short_ids(folded), width, initial_indent=indent, subsequent_indent=hang,
                         break_on_hyphens=False) or [indent.rstrip()]


def fit_lines(lines: Iterable[str], width: int = WIDTH) -> str:
    """Lines fitted to ``width`` columns, each keeping its indent; a long line continues under its text (after
    a bullet or a step number such as ``- ``, ``+ 3. ``, ``[2/5] ``), else four columns in."""
    out: list[str] = []
    for line in lines:
        for part in str(line).split("\n"):
            if len(part) <= width:
                out.append(part)
                continue
            body = part.lstrip(" ")
            indent = part[: len(part) - len(body)]
            bullet = _BULLET.match(body)
            hang = indent + (" " * len(bullet.group(0)) if bullet else "    ")
            out += fit(body, indent, hang, width)
    return "\n".join(out)


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], width: int = WIDTH) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart, the table no wider than ``width``: the last column
    wraps under itself; the others shrink (widest first, a long cell folding in its column) only when they alone
    leave the last one under 20 columns. Plain text (no rich: an Automation job prints tables too)."""
    if not head:
        return []
    grid = [[str(h) for h in head], *[[short_ids(one_line(str(v))) for v in row] for row in rows]]
    widths = [max(len(r[k]) for r in grid) for k in range(len(head))]
    fixed = len(head) - 1
    while sum(widths[:fixed]) + 2 * fixed + 20 > width and max(widths[:fixed], default=0) > 4:
        widest = max(range(fixed), key=lambda k: widths[k])
        widths[widest] -= 1
    last = max(1, width - sum(widths[:fixed]) - 2 * fixed)
    out: list[str] = []
    for row in grid:
        cells = [[c[i:i + widths[k]] for i in range(0, len(c), widths[k])] or [""] for k, c in enumerate(row[:fixed])]
        cells.append(textwrap.wrap(row[fixed], last, break_on_hyphens=False) or [""])
        for n in range(max(len(c) for c in cells)):
            parts = [(c[n] if n < len(c) else "").ljust(widths[k] if k < fixed else 0) for k, c in enumerate(cells)]
            out.append("  ".join(parts).rstrip())
    return out


def wrap_prefixed(prefix: str, text: str, width: int = WIDTH) -> list[str]:
    """``prefix: text`` as whole lines of at most ``width`` characters, each starting with ``prefix:`` (later ones
    indented), so nothing is cut and every line still says whose it is (a VM's, in a sweep's log). No prefix: the
    text alone, wrapped the same way."""
    head = f"{prefix}: " if prefix else ""
    room = width - len(head) - 2
    if room < 20:
        return [cut(head + text, width)]
    chunks = textwrap.wrap(one_line(text), room + 2, break_on_hyphens=False) or [""]
    rest = textwrap.wrap(one_line(" ".join(chunks[1:])), room, break_on_hyphens=False)
    return [head + chunks[0], *(f"{head}  {chunk}" for chunk in rest)]
