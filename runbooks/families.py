"""The failure families of the RCA articles, and how far the playbooks cover each.

Every compute-VM RCA article belongs to one *family* (``runbooks/data/article-families.tsv``: articleId →
family id, taken from ``shared/reference/rca-classification.tsv``). Each family has a *class*, the kind of
answer the toolkit owes its articles:

- ``remediate``: a playbook changes the VM (or what blocks it) and verifies the fix;
- ``recommend``: a playbook diagnoses the failure and recommends the choice only the operator can make;
- ``explain``: nothing to change in ARM; a playbook explains the event and runs post-checks.

``coverage(articles, playbooks)`` says, family by family, which of a corpus's articles a playbook claims.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from runbooks.articles import Article
    from runbooks.playbook import Playbook

FamilyClass = Literal["remediate", "recommend", "explain"]
CLASSES: tuple[FamilyClass, ...] = ("remediate", "recommend", "explain")

UNCLASSIFIED = "(unclassified)"
"""The coverage row of articles whose id is in no family (not an RCA article of the shared corpus)."""

TABLE = "data/article-families.tsv"
"""The family table, relative to the ``runbooks`` package (shipped in the wheel as package data)."""


@dataclass(frozen=True)
class Family:
    """A failure family: its id (as in the family table), its class and what its articles are about."""

    id: str
    class_: FamilyClass
    description: str


_CATALOGUE: tuple[Family, ...] = (
    Family("RECREATE", "remediate", "the VM cannot run as it is: rebuild it from image or disk"),
    Family("ALLOC", "remediate", "no capacity for the size right now: start again, or resize"),
    Family("SIZE_NOT_IN_CLUSTER", "remediate", "the size is not offered where the VM or its set is placed"),
    Family("RETRY_REDEPLOY", "remediate", "a transient or host fault: retry, or redeploy to a new host"),
    Family("NIC", "remediate", "a network interface change that needs the VM deallocated"),
    Family("BOOTDIAG", "remediate", "boot diagnostics points at storage it cannot write to"),
    Family("IOPS", "remediate", "disk I/O is capped: a larger size or a faster disk tier"),
    Family("MARKET_TERMS", "remediate", "the Marketplace image's terms have not been accepted"),
    Family("LOCK", "remediate", "a management lock blocks the operation"),
    Family("PICK_SKU", "recommend", "size, region or zone not available: choose an allowed one"),
    Family("QUOTA", "recommend", "a vCPU or resource quota would be exceeded"),
    Family("MARKET_PLAN", "recommend", "the VM's Marketplace plan does not match its image"),
    Family("POLICY", "explain", "an Azure Policy assignment denied the request"),
    Family("IMAGE_PREP", "explain", "the source image or VHD was not prepared for Azure"),
    Family("INFO_PLATFORM", "explain", "after the fact: the VM was rebooted, paused or moved"),
    Family("INFO_GUESTOS", "explain", "after the fact: the guest operating system crashed or hung"),
    Family("BILLING", "explain", "subscription state or purchase eligibility, not the VM"),
    Family("INFO_OTHER", "explain", "informational, with nothing in ARM to act on"),
)
_BY_ID: dict[str, Family] = {f.id: f for f in _CATALOGUE}


def families() -> tuple[Family, ...]:
    """The family catalogue: remediate families first, then recommend, then explain."""
    return _CATALOGUE


def family(family_id: str) -> Family:
    """The family with this id (exact); KeyError for an unknown one."""
    return _BY_ID[family_id]


def read_table(text: str, source: str = TABLE) -> dict[str, str]:
    """Parse a family table: ``#`` comment lines, a header ``articleId<TAB>family``, then one row per article.

    Returns articleId (as written) → family id. ValueError, naming ``source`` and the line, on a malformed
    row, an unknown family or an articleId listed twice (ids compare case-insensitively)."""
    table: dict[str, str] = {}
    seen: dict[str, int] = {}
    header = False
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if not header:
            if cells != ["articleId", "family"]:
                raise ValueError(f"{source}:{n}: expected the header 'articleId<TAB>family'")
            header = True
            continue
        if len(cells) != 2 or not cells[0].strip() or cells[0] != cells[0].strip():
            raise ValueError(f"{source}:{n}: expected 'articleId<TAB>family'")
        article_id, family_id = cells
        if family_id not in _BY_ID:
            raise ValueError(f"{source}:{n}: unknown family {family_id!r}")
        if (first := seen.get(article_id.lower())) is not None:
            raise ValueError(f"{source}:{n}: articleId {article_id!r} already listed on line {first}")
        seen[article_id.lower()] = n
        table[article_id] = family_id
    if not header:
        raise ValueError(f"{source}: no header 'articleId<TAB>family'")
    return table


@functools.cache
def table() -> Mapping[str, str]:
    """The shipped family table: articleId → family id."""
    text = resources.files("runbooks").joinpath(TABLE).read_text(encoding="utf-8")
    return read_table(text)


@functools.cache
def _by_lower() -> dict[str, str]:
    return {article_id.lower(): family_id for article_id, family_id in table().items()}


def family_of(article_id: str) -> str | None:
    """The family id of an articleId (case-insensitive), or None when it is in no family."""
    return _by_lower().get(article_id.lower())


@dataclass(frozen=True)
class FamilyCoverage:
    """One family's articles in a corpus: those a playbook claims (with its id) and the rest."""

    family: str
    """The family id, or ``UNCLASSIFIED``."""
    class_: FamilyClass | None
    """None for ``UNCLASSIFIED``."""
    description: str
    claimed: Mapping[str, str] = field(default_factory=dict)
    """articleId → id of the playbook that claims it."""
    unclaimed: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return len(self.claimed) + len(self.unclaimed)

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.class_, "description": self.description, "total": self.total,
                "claimed": dict(self.claimed), "unclaimed": list(self.unclaimed)}


@dataclass(frozen=True)
class Coverage:
    """Which articles of a corpus the playbooks claim, per family (every family of the catalogue, in order)."""

    families: tuple[FamilyCoverage, ...]
    unclassified: FamilyCoverage
    """Articles of the corpus in no family: non-RCA articles, ids unknown to the family table."""

    @property
    def rows(self) -> tuple[FamilyCoverage, ...]:
        """The families, then the unclassified articles when there are any."""
        return (*self.families, self.unclassified) if self.unclassified.total else self.families

    @property
    def total(self) -> int:
        return sum(row.total for row in self.rows)

    @property
    def claimed(self) -> int:
        return sum(len(row.claimed) for row in self.rows)

    def by_class(self) -> dict[FamilyClass, tuple[int, int]]:
        """Per class, in ``CLASSES`` order: (claimed, total) articles."""
        out: dict[FamilyClass, tuple[int, int]] = {c: (0, 0) for c in CLASSES}
        for row in self.families:
            assert row.class_ is not None
            claimed, total = out[row.class_]
            out[row.class_] = (claimed + len(row.claimed), total + row.total)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "claimed": self.claimed,
            "classes": {c: {"claimed": n, "total": t} for c, (n, t) in self.by_class().items()},
            "families": {row.family: row.to_dict() for row in self.families},
            "unclassified": self.unclassified.to_dict(),
        }


def coverage(
    articles: Iterable[Article], playbooks: Mapping[str, Playbook] | Iterable[Playbook] | None = None
) -> Coverage:
    """Each article of ``articles`` under its family, claimed (by the playbook serving its id) or not.

    ``playbooks`` as ``load_playbooks`` returns them (the default folder when None); the loader already refuses
    an articleId claimed twice, so each article has at most one playbook."""
    from runbooks.playbook import load_playbooks, playbook_for_article

    if playbooks is None:
        playbooks = load_playbooks()
    pool = list(playbooks.values() if isinstance(playbooks, Mapping) else playbooks)
    claimed: dict[str, dict[str, str]] = {}
    unclaimed: dict[str, list[str]] = {}
    for article in sorted(articles, key=lambda a: (a.article_id.lower(), a.article_id)):
        key = family_of(article.article_id) or UNCLASSIFIED
        pb = playbook_for_article(article.article_id, pool)
        if pb is not None:
            claimed.setdefault(key, {})[article.article_id] = pb.id
        else:
            unclaimed.setdefault(key, []).append(article.article_id)

    def row(family_id: str, class_: FamilyClass | None, description: str) -> FamilyCoverage:
        return FamilyCoverage(family_id, class_, description, claimed.get(family_id, {}),
                              tuple(unclaimed.get(family_id, ())))

    return Coverage(
        families=tuple(row(f.id, f.class_, f.description) for f in _CATALOGUE),
        unclassified=row(UNCLASSIFIED, None, "articles whose id is in no family of the table"),
    )
