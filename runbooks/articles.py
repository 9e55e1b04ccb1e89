"""Parse Azure SelfHelp RCA articles (``<properties/>`` block, marker sections, placeholders) into data.

Articles are test data without a licence: this module reads them where they are and never ships any.
The format and its quirks are described in ``shared/reference/selfhelp-articles.md``; in short:

- leading BOMs are stripped, CRLF and lone CR become LF, text before ``<properties`` is tolerated;
- property names are case-insensitive (stored lower-cased), known typos are corrected, values may
  contain ``>``, an unterminated quote ends at end of line;
- ``<!--issueDescription-->`` and the other known markers form a tree of sections; a closing marker
  with no opener opens the section; every other HTML comment is ignored;
- ``<!--$Name-->default<!--/$Name-->`` placeholders pair by trimmed, case-insensitive name.

``parse_article(text, strict=True)`` raises ``ArticleError`` at the first irregularity; lenient mode
(the default) recovers and records each one in ``Article.warnings``. No input makes it crash.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from runbooks.errors import ArticleError, UsageError

MARKERS: tuple[str, ...] = (
    "issueDescription",
    "rcaDescription",
    "resolutionDetails",
    "additionalInfo",
    "recommendedActions",
    "salutation",
)
"""Comment markers that delimit sections; any other ``<!--comment-->`` is an author note and ignored."""

_MARKER_BY_LOWER = {m.lower(): m for m in MARKERS}

PROPERTY_TYPOS: dict[str, str] = {"supporttoicids": "supporttopicids", "infobubbletest": "infobubbletext"}
"""Misspelled property names seen upstream, read as the property they meant (lower-case)."""

MANIFEST = "manifest.tsv"

_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][\w.:-]*")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_RUNTIME_TOKEN = re.compile(r"\{\$(\w+)\}|\$(\w+)")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_ATTR_START = re.compile(r"[A-Za-z_][\w.:-]*\s*=")
_JUNK_LINE = re.compile(r"^[\s,\"'\u200b\ufeff]*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParseWarning(_Frozen):
    """One irregularity that lenient parsing recovered from."""

    line: int | None
    problem: str

    def __str__(self) -> str:
        return f"{self.line}: {self.problem}" if self.line is not None else self.problem


class Placeholder(_Frozen):
    """A ``<!--$name-->default<!--/$name-->`` span; the portal replaces the whole span by a value."""

    name: str
    """Name as written in the opening marker, trimmed (``vmname``, ``StartTime``)."""
    default: str
    """Sample text between the markers (padding kept); shown when no value is given."""
    line: int
    start: int
    """Offset of the opening marker in ``Article.text``."""
    end: int
    """Offset just past the closing marker in ``Article.text``."""

    @property
    def key(self) -> str:
        """Name for case-insensitive lookup (``VMName`` and ``vmname`` are the same placeholder)."""
        return self.name.lower()

    @property
    def sample(self) -> str:
        """The default without padding or emphasis that straddles the span (``[vmname]**`` → ``[vmname]``)."""
        return _split_emphasis(self.default)[1]


class Heading(_Frozen):
    """An ATX heading outside fenced code."""

    level: int
    text: str
    """Markdown after the ``#``s, placeholders included."""
    title: str
    """Plain title: placeholder defaults filled in, comments and emphasis removed."""
    line: int


class Link(_Frozen):
    """A Markdown link ``[text](target)``; ``data-blade:`` targets open a portal blade."""

    text: str
    target: str
    line: int

    @property
    def is_blade(self) -> bool:
        """Whether the link opens a portal blade (a remediation hint such as VirtualMachineRedeploy)."""
        return self.target.startswith("data-blade:")

    @property
    def blade(self) -> str | None:
        """Blade name of a ``data-blade:Extension.Blade.param.value`` link, else None."""
        if not self.is_blade:
            return None
        parts = self.target[len("data-blade:") :].split(";")[0].split(".")
        return parts[1] if len(parts) > 1 else parts[0]

    @property
    def tokens(self) -> tuple[str, ...]:
        """Runtime tokens in the target (``$resourceId``, ``{$domain}``): the second placeholder syntax."""
        return tuple(a or b for a, b in _RUNTIME_TOKEN.findall(self.target))


class Section(_Frozen):
    """A marker section such as ``<!--issueDescription-->…<!--/issueDescription-->``, with nested ones."""

    name: str
    line: int
    end_line: int
    start: int
    """Offset of the section's content (just past the opening marker) in ``Article.text``."""
    end: int
    """Offset where the content ends (the closing marker, or end of text when unclosed)."""
    text: str
    """Raw content, placeholders and nested markers included."""
    closed: bool
    children: tuple[Section, ...] = ()

    def walk(self) -> Iterable[Section]:
        """Yield this section and every nested one, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()


class Article(_Frozen):
    """A parsed SelfHelp article. ``text`` is the normalised source (no BOM, LF line ends)."""

    path: str | None
    article_id: str
    diagnostic_scenario: str
    properties: dict[str, str]
    """Every property, names lower-cased (typos corrected), values trimmed; case of values kept."""
    text: str
    body_start: int
    """Offset in ``text`` just past the properties block."""
    sections: tuple[Section, ...]
    placeholders: tuple[Placeholder, ...]
    headings: tuple[Heading, ...]
    links: tuple[Link, ...]
    warnings: tuple[ParseWarning, ...]

    @property
    def body(self) -> str:
        """The Markdown after the properties block."""
        return self.text[self.body_start :]

    @property
    def title(self) -> str:
        """Plain text of the first H1 (placeholder defaults filled in), else the pageTitle property."""
        h1 = next((h for h in self.headings if h.level == 1), None)
        return h1.title if h1 else self.properties.get("pagetitle", "")

    @property
    def self_help_type(self) -> str:
        """The selfHelpType property, lower-cased (``rca``)."""
        return self.properties.get("selfhelptype", "").lower()

    def property_list(self, name: str) -> list[str]:
        """A comma-separated property as a list of trimmed, non-empty items (name is case-insensitive)."""
        raw = self.properties.get(name.lower(), "")
        return [item.strip() for item in raw.split(",") if item.strip()]

    def section(self, name: str) -> Section | None:
        """The first section with this marker name (case-insensitive), searching nested sections too."""
        for top in self.sections:
            for s in top.walk():
                if s.name.lower() == name.lower():
                    return s
        return None

    @property
    def issue_description(self) -> str:
        """Raw text of the issueDescription section: the customer-specific finding ("" if absent)."""
        s = self.section("issueDescription")
        return s.text.strip() if s else ""

    @property
    def placeholder_defaults(self) -> dict[str, str]:
        """Each distinct placeholder (first spelling seen) with its trimmed default."""
        out: dict[str, str] = {}
        seen: set[str] = set()
        for p in self.placeholders:
            if p.key not in seen:
                seen.add(p.key)
                out[p.name] = p.sample
        return out

    @property
    def remediation_text(self) -> str:
        """Text from the end of issueDescription to Recommended Documents, recommendedActions' end,
        the salutation or the end of the article: where the article's remedy is (prose, unreliable)."""
        issue = self.section("issueDescription")
        start = issue.end if issue else self.body_start
        rest = self.text[start:]
        rest = re.sub(r"^<!--\s*/\s*issueDescription\s*-->", "", rest.lstrip("\n"), flags=re.IGNORECASE)
        stop = re.search(
            r"^##\s*\**\s*Recommended Documents|<!--\s*/\s*recommendedActions\s*-->|<!--\s*salutation\s*-->",
            rest,
            flags=re.IGNORECASE | re.MULTILINE,
        )
        return rest[: stop.start()] if stop else rest


# --- parsing --------------------------------------------------------------------------------------


class _Diag:
    """Collects warnings; in strict mode the first one is raised as ArticleError."""

    def __init__(self, path: str | None, strict: bool) -> None:
        self.path, self.strict = path, strict
        self.warnings: list[ParseWarning] = []

    def warn(self, line: int | None, problem: str) -> None:
        if self.strict:
            raise ArticleError(problem, path=self.path, line=line)
        self.warnings.append(ParseWarning(line=line, problem=problem))


class _Lines:
    """Offset → 1-based line number."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def of(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1


def normalize(text: str) -> str:
    """Strip leading BOMs (one or more) and turn CRLF and lone CR into LF."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def decode(data: bytes) -> tuple[str, bool]:
    """Decode article bytes as UTF-8 (invalid bytes replaced); return the text and whether it was valid."""
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def _parse_properties(text: str, lines: _Lines, diag: _Diag) -> tuple[dict[str, str], int]:
    """Read the ``<properties … />`` block; return the properties and the offset just past it."""
    start = text.find("<properties")
    if start < 0:
        diag.warn(1, "no <properties ... /> block")
        return {}, 0
    if text[:start].strip():
        diag.warn(1, "text before the <properties block")
    props: dict[str, str] = {}
    pos = start + len("<properties")
    first_line = True
    while pos < len(text):
        eol = text.find("\n", pos)
        eol = len(text) if eol < 0 else eol
        line_no = lines.of(pos)
        segment = text[pos:eol]
        if not first_line and not _JUNK_LINE.match(segment):
            head = segment.lstrip()
            if not (head.startswith(">") or head.startswith("/>") or _ATTR_START.match(head)):
                diag.warn(line_no, "properties block not closed with '/>'")
                return props, pos
        first_line = False
        end = _scan_property_line(segment, line_no, props, diag)
        if end is not None:
            return props, pos + end
        pos = eol + 1
    diag.warn(lines.of(len(text)), "properties block not closed with '/>' before end of file")
    return props, len(text)


def _scan_property_line(segment: str, line_no: int, props: dict[str, str], diag: _Diag) -> int | None:
    """Read one line's attributes into ``props``; return the offset past ``/>`` if the block ends here."""
    i, n = 0, len(segment)
    junk = False
    while i < n:
        ch = segment[i]
        if ch.isspace():
            i += 1
            continue
        if segment.startswith("/>", i):
            return i + 2
        if ch == ">":
            diag.warn(line_no, "properties block closed with '>' instead of '/>'")
            return i + 1
        m = _NAME.match(segment, i)
        if not m:
            if not junk:
                diag.warn(line_no, f"stray {segment[i]!r} in the properties block")
                junk = True
            i += 1
            continue
        raw_name, i = m.group(0), m.end()
        while i < n and segment[i] in " \t":
            i += 1
        if i >= n or segment[i] != "=":
            diag.warn(line_no, f"property {raw_name!r} has no value")
            continue
        i += 1
        while i < n and segment[i] in " \t":
            i += 1
        value, i, ended = _scan_value(segment, i, raw_name, line_no, diag)
        _store_property(props, raw_name, value, line_no, diag)
        if ended is not None:
            return ended
    return None


def _scan_value(segment: str, i: int, name: str, line_no: int, diag: _Diag) -> tuple[str, int, int | None]:
    """Read the value at ``segment[i]``; return it, the next offset, and the block end if it ends there."""
    n = len(segment)
    if i < n and segment[i] in "\"'":
        quote = segment[i]
        close = segment.find(quote, i + 1)
        if close >= 0:
            return segment[i + 1 : close], close + 1, None
        diag.warn(line_no, f"unterminated quote in property {name!r} (value ends at end of line)")
        rest = segment[i + 1 :]
        if rest.rstrip().endswith("/>"):
            cut = rest.rstrip()[:-2]
            return cut, n, i + 1 + len(rest.rstrip())
        return rest, n, None
    m = re.match(r"[^\s/>]*", segment[i:])
    value = m.group(0) if m else ""
    diag.warn(line_no, f"property {name!r} has an unquoted value")
    return value, i + len(value), None


def _store_property(props: dict[str, str], raw_name: str, value: str, line_no: int, diag: _Diag) -> None:
    name = raw_name.lower()
    if name in PROPERTY_TYPOS:
        diag.warn(line_no, f"misspelled property {raw_name!r} read as {PROPERTY_TYPOS[name]!r}")
        name = PROPERTY_TYPOS[name]
    value = value.replace("\u200b", "").strip()
    if name in props:
        diag.warn(line_no, f"duplicate property {raw_name!r} (first value kept)")
        return
    props[name] = value


def _last_open(open_ph: list[tuple[Any, ...]], key: str) -> int | None:
    """Index of the innermost open placeholder named ``key`` (case-insensitive), else None."""
    folded = key.lower()
    return next((j for j in range(len(open_ph) - 1, -1, -1) if str(open_ph[j][0]).lower() == folded), None)


class _Open:
    """A marker section being built."""

    def __init__(self, name: str, line: int, start: int) -> None:
        self.name, self.line, self.start = name, line, start
        self.children: list[Section] = []

    def finish(self, text: str, end: int, end_line: int, closed: bool) -> Section:
        return Section(
            name=self.name,
            line=self.line,
            end_line=end_line,
            start=self.start,
            end=end,
            text=text[self.start : end],
            closed=closed,
            children=tuple(self.children),
        )


def _parse_markers(
    text: str, body_start: int, lines: _Lines, diag: _Diag
) -> tuple[tuple[Section, ...], tuple[Placeholder, ...]]:
    """Build the section tree and pair the placeholders, from the comments after the properties block."""
    top: list[Section] = []
    stack: list[_Open] = []
    opened: set[str] = set()
    open_ph: list[tuple[str, int, int, int]] = []  # name, start of marker, end of marker, line
    placeholders: list[Placeholder] = []

    def close_into_parent(section: Section) -> None:
        (stack[-1].children if stack else top).append(section)

    for m in _COMMENT.finditer(text, body_start):
        inner = m.group(1).strip()
        line = lines.of(m.start())
        closing = inner.startswith("/")
        name = inner[1:].strip() if closing else inner
        if name.startswith("$"):
            key = name[1:].strip()
            if not closing:
                if any(k.lower() == key.lower() for k, *_ in open_ph):
                    diag.warn(line, f"placeholder {key!r} opened again before it was closed")
                open_ph.append((key, m.start(), m.end(), line))
                continue
            idx = _last_open(open_ph, key)
            if idx is None:
                diag.warn(line, f"closing placeholder marker {key!r} without an opening one")
                continue
            o_name, o_start, o_end, o_line = open_ph.pop(idx)
            placeholders.append(
                Placeholder(
                    name=o_name, default=text[o_end : m.start()], line=o_line, start=o_start, end=m.end()
                )
            )
            continue
        marker = _MARKER_BY_LOWER.get(name.lower())
        if marker is None:
            continue  # an author note or commented-out text
        if not closing:
            stack.append(_Open(marker, line, m.end()))
            opened.add(marker)
            continue
        depth = next((j for j in range(len(stack) - 1, -1, -1) if stack[j].name == marker), None)
        if depth is None:
            if marker not in opened:
                diag.warn(line, f"<!--/{marker}--> without an opening marker (read as the opener)")
                stack.append(_Open(marker, line, m.end()))
                opened.add(marker)
            else:
                diag.warn(line, f"stray closing marker <!--/{marker}-->")
            continue
        while len(stack) - 1 > depth:
            inner_open = stack.pop()
            diag.warn(inner_open.line, f"<!--{inner_open.name}--> not closed before <!--/{marker}-->")
            close_into_parent(inner_open.finish(text, m.start(), line, closed=False))
        close_into_parent(stack.pop().finish(text, m.start(), line, closed=True))

    last = lines.of(len(text))
    while stack:
        o = stack.pop()
        diag.warn(o.line, f"<!--{o.name}--> never closed")
        close_into_parent(o.finish(text, len(text), last, closed=False))
    for o_name, _s, _e, o_line in open_ph:
        diag.warn(o_line, f"placeholder {o_name!r} never closed")
    placeholders.sort(key=lambda p: p.start)
    return tuple(top), tuple(placeholders)


def _plain(markdown: str) -> str:
    """One-line plain text: placeholder defaults filled in, comments, emphasis and link targets removed."""
    s = fill_placeholders(markdown, {})
    s = _COMMENT.sub("", s)
    s = _LINK.sub(lambda m: m.group(2), s)
    s = re.sub(r"(\*\*|__|\*|`)", "", s)
    return " ".join(s.split())


def _parse_headings_and_links(
    text: str, body_start: int, lines: _Lines
) -> tuple[tuple[Heading, ...], tuple[Link, ...]]:
    headings: list[Heading] = []
    links: list[Link] = []
    fence: str | None = None
    first = lines.of(body_start)
    for offset, raw in enumerate(text[body_start:].split("\n")):
        line_no = first + offset
        f = _FENCE.match(raw)
        if f:
            mark = f.group(1)
            if fence is None:
                fence = mark[0] * 3
            elif mark.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        h = _HEADING.match(raw)
        if h:
            content = re.sub(r"[ \t]+#+$", "", h.group(2))
            headings.append(Heading(level=len(h.group(1)), text=content, title=_plain(content), line=line_no))
        for lk in _LINK.finditer(raw):
            if not lk.group(1):
                links.append(Link(text=lk.group(2), target=lk.group(3), line=line_no))
    return tuple(headings), tuple(links)


def parse_article(text: str, *, path: str | Path | None = None, strict: bool = False) -> Article:
    """Parse one SelfHelp article.

    Strict mode raises ``ArticleError`` ("file:line: problem") at the first irregularity; lenient
    mode recovers and lists each one in ``Article.warnings``.
    """
    where = str(path) if path is not None else None
    diag = _Diag(where, strict)
    norm = normalize(text)
    lines = _Lines(norm)
    props, body_start = _parse_properties(norm, lines, diag)
    sections, placeholders = _parse_markers(norm, body_start, lines, diag)
    headings, links = _parse_headings_and_links(norm, body_start, lines)
    article_id = props.get("articleid", "")
    if not article_id:
        diag.warn(1, "no articleId property")
    if not any(s.name == "issueDescription" for top in sections for s in top.walk()):
        diag.warn(None, "no <!--issueDescription--> section")
    if not any(h.level == 1 for h in headings):
        diag.warn(None, "no H1 heading")
    return Article(
        path=where,
        article_id=article_id,
        diagnostic_scenario=props.get("diagnosticscenario", ""),
        properties=props,
        text=norm,
        body_start=body_start,
        sections=sections,
        placeholders=placeholders,
        headings=headings,
        links=links,
        warnings=tuple(diag.warnings),
    )


def read_article(path: str | Path, *, strict: bool = False) -> Article:
    """Read and parse an article file (invalid UTF-8 is replaced, and is a warning)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UsageError(f"{p}: cannot read article: {e.strerror or e}") from e
    text, valid = decode(data)
    if not valid:
        if strict:
            raise ArticleError("not valid UTF-8", path=str(p))
        article = parse_article(text, path=p)
        return article.model_copy(
            update={"warnings": (ParseWarning(line=None, problem="not valid UTF-8"), *article.warnings)}
        )
    return parse_article(text, path=p, strict=strict)


# --- corpus ---------------------------------------------------------------------------------------


def default_corpus_dir() -> Path:
    """The articles folder: env ``RUNBOOKS_ARTICLES``, else ``../shared/articles`` next to the repository."""
    env = os.environ.get("RUNBOOKS_ARTICLES")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "articles"
    if candidate.is_dir():
        return candidate
    raise UsageError(f"no articles folder: {candidate} does not exist; set RUNBOOKS_ARTICLES or pass --dir")


def read_manifest(directory: str | Path) -> list[dict[str, str]]:
    """Rows of ``manifest.tsv`` in ``directory`` (column name → value); empty when there is none."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def load_corpus(directory: str | Path, *, strict: bool = False) -> list[Article]:
    """Parse every article of a folder: the files listed in manifest.tsv, or else every ``*.md``."""
    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"{d}: no such articles folder; set RUNBOOKS_ARTICLES or pass --dir")
    rows = read_manifest(d)
    files = [d / r["file"] for r in rows if r.get("file")] if rows else sorted(d.glob("*.md"))
    for f in files:
        if not f.is_file():
            raise UsageError(f"{f}: listed in {d / MANIFEST} but missing")
    return [read_article(f, strict=strict) for f in files]


def find_article(articles: Iterable[Article], article_id: str) -> Article:
    """The article with this id (exact, else the only case-insensitive match); UsageError otherwise."""
    pool = list(articles)
    for a in pool:
        if a.article_id == article_id:
            return a
    folded = [a for a in pool if a.article_id.lower() == article_id.lower()]
    if len(folded) == 1:
        return folded[0]
    close = difflib.get_close_matches(article_id, [a.article_id for a in pool], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run 'invoke articles.list' for the ids"
    raise UsageError(f"unknown article id {article_id!r}{hint}")


# --- rendering ------------------------------------------------------------------------------------


def _lookup(values: Mapping[str, str], name: str) -> str | None:
    if name in values:
        return values[name]
    folded = {k.strip().lower(): v for k, v in values.items()}
    return folded.get(name.strip().lower())


def _split_emphasis(default: str) -> tuple[str, str, str]:
    """Split a default into emphasis that belongs outside the span, the sample, and trailing emphasis.

    ``**<!--$vmname-->[vmname]**<!--/$vmname-->`` closes its bold inside the span; a value must keep it.
    """
    core = default.strip()
    lead_m, trail_m = re.match(r"^[*_]+", core), re.search(r"[*_]+$", core)
    lead = lead_m.group(0) if lead_m and lead_m.group(0) not in core[lead_m.end() :] else ""
    core = core[len(lead) :]
    trail = ""
    if trail_m and trail_m.group(0) not in core[: len(core) - len(trail_m.group(0))]:
        trail = trail_m.group(0)
    if trail and len(trail) <= len(core):
        core = core[: len(core) - len(trail)]
    else:
        trail = ""
    return lead, core.strip(), trail


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Replace each placeholder span by its value (case-insensitive name), else by its trimmed default.

    Unpaired markers are left in place (rendering drops them as comments).
    """
    out: list[str] = []
    pos = 0
    open_ph: list[tuple[str, int, int]] = []
    spans: list[tuple[int, int, str]] = []
    for m in _COMMENT.finditer(text):
        inner = m.group(1).strip()
        closing = inner.startswith("/")
        name = (inner[1:] if closing else inner).strip()
        if not name.startswith("$"):
            continue
        key = name[1:].strip()
        if not closing:
            open_ph.append((key, m.start(), m.end()))
            continue
        idx = _last_open(open_ph, key)
        if idx is None:
            continue
        o_name, o_start, o_end = open_ph.pop(idx)
        value = _lookup(values, o_name)
        lead, sample, trail = _split_emphasis(text[o_end : m.start()])
        spans.append((o_start, m.end(), lead + (value if value is not None else sample) + trail))
    spans.sort()
    for start, end, value in spans:
        if start < pos:
            continue  # overlapping (mis-nested) spans: keep the first
        out.append(text[pos:start])
        out.append(value)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _fill_runtime_tokens(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{$name}`` / ``$name`` tokens of blade links when a value is given."""

    def sub(m: re.Match[str]) -> str:
        value = _lookup(values, m.group(1) or m.group(2))
        return value if value is not None else m.group(0)

    return _LINK.sub(
        lambda lk: (
            lk.group(0).replace(lk.group(3), _RUNTIME_TOKEN.sub(sub, lk.group(3)))
            if lk.group(3).startswith("data-blade:")
            else lk.group(0)
        ),
        text,
    )


def _escape_angles(markdown: str) -> str:
    """Escape ``<`` outside code so ``<BCD>``-style prose survives Markdown's HTML handling."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        f = _FENCE.match(line)
        if f:
            mark = f.group(1)
            if fence is None:
                fence = mark[0] * 3
            elif mark.startswith(fence):
                fence = None
            out.append(line)
            continue
        if fence is not None:
            out.append(line)
            continue
        parts = re.split(r"(`+[^`]*`+)", line)
        out.append("".join(p if p.startswith("`") else p.replace("<", "\\<") for p in parts))
    return "\n".join(out)


def to_markdown(article: Article, values: Mapping[str, str] | None = None) -> str:
    """The article body as clean Markdown: placeholders filled, comments dropped, ``<br>`` as line breaks."""
    body = fill_placeholders(article.body, values or {})
    body = _fill_runtime_tokens(body, values or {})
    body = _COMMENT.sub("", body)
    # a <br> inside a table row must not split the row
    body = "\n".join(_BR.sub(" ", ln) if "|" in ln else ln for ln in body.split("\n"))
    body = _BR.sub("\n", body)
    body = re.sub(r"\n{3,}", "\n\n", body)
    return _escape_angles(body.strip("\n")) + "\n"


def render_article(article: Article, values: Mapping[str, str], *, width: int = 100) -> str:
    """Readable terminal text of the article as the portal would show it (value if given, else default)."""
    from rich.console import Console
    from rich.markdown import Markdown

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(Markdown(to_markdown(article, values), hyperlinks=False))
    return "\n".join(line.rstrip() for line in buf.getvalue().split("\n")).strip("\n") + "\n"
