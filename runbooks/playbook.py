"""Playbooks: remediations as validated data (``playbooks/<id>.yaml``), executed by the remediation engine.

A playbook names the SelfHelp articles it serves (by ``articleId``), the *signals* that detect the
problem on a VM, and *scenarios*: each recommended when all its ``when`` signals hold, with the
evidence to show, ordered steps (``run:`` a catalogue step with typed ``with:`` parameters, or a
``manual:`` instruction in our own words) and post-conditions to verify::

    id: generalized-vm
    articles: [Startfailure_GeneralizedImage]
    detect: [os-generalized]
    signals:
      - {id: os-generalized, source: instance-view, status_code: OSState/generalized}
    scenarios:
      - id: from-image
        when: [os-generalized, has-captured-image]
        steps:
          - run: snapshot-disks
            with: {incremental: true}
        verify:
          - {signal: os-generalized, holds: false}

Reading a playbook (engine side)::

    pb = playbook_for_article("Startfailure_GeneralizedImage")
    for sc in pb.scenarios:                       # in order of preference
        signals = [pb.signal(s) for s in sc.when] # all must hold to recommend sc
        for step in sc.steps:
            if isinstance(step, RunStep):
                step.run, step.params, step.destructive    # catalogue name, typed StepParams, bool
            else:
                step.manual, step.confirm                  # text to show; ask before going on

``load_playbook`` raises ``PlaybookError`` ("<file>:<line>: <field>: <problem>"); ``lint`` returns
every ``Issue`` of a folder, including cross-file ones (an articleId claimed twice, ids missing from
the article corpus).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    model_validator,
)

import runbooks
from runbooks.checks import CHECKS, FALLOUT
from runbooks.errors import PlaybookError, UsageError
from runbooks.signals import SIGNAL_SOURCES, AnySignal, Signal
from runbooks.steps.registry import StepParams, StepSpec, catalog

Loc = tuple[str | int, ...]
_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"
Id = Annotated[str, Field(pattern=_ID, description="kebab-case id")]


class Model(BaseModel):
    """Base of the playbook schema: immutable, and an unknown key is an error (a typo must not pass)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


# --- steps --------------------------------------------------------------------------------------------


class RunStep(Model):
    """Run a catalogue step. ``with`` is checked against the step's parameter model when loading."""

    run: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    destructive: bool | None = Field(
        None, description="optional; when given it must match the catalogue (documentation only)"
    )
    always: bool = Field(False, description="run even when an earlier step failed (e.g. put back a lifted lock)")

    @property
    def spec(self) -> StepSpec:
        """The catalogue entry (the step name is validated when the playbook is loaded)."""
        return catalog()[self.run]

    @property
    def params(self) -> StepParams:
        """The ``with:`` parameters as the step's typed parameter model (defaults filled in)."""
        return self.spec.params.model_validate(self.with_)

    @property
    def is_destructive(self) -> bool:
        """Whether the step deletes or replaces something (from the catalogue, never from the YAML)."""
        return self.spec.destructive


class ManualStep(Model):
    """Something the user must do or confirm; the engine shows the text and, if ``confirm``, waits."""

    manual: str = Field(..., min_length=1)
    confirm: bool = True

    @property
    def is_destructive(self) -> bool:
        """Manual steps change nothing by themselves."""
        return False


def _step_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        kinds = [k for k in ("run", "manual") if k in v]
        return kinds[0] if len(kinds) == 1 else None
    return "run" if isinstance(v, RunStep) else "manual" if isinstance(v, ManualStep) else None


Step = Annotated[
    Annotated[RunStep, Tag("run")] | Annotated[ManualStep, Tag("manual")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step has exactly one of run: (a catalogue step) or manual: (an instruction)",
    ),
]


# --- scenarios and playbooks --------------------------------------------------------------------------


class Evidence(Model):
    """One thing to show the user before acting: a signal's finding or a VM property."""

    label: str = Field(..., min_length=1)
    signal: str | None = None
    property: str | None = Field(None, description="dotted VM-model path, e.g. storageProfile.osDisk.name")

    @model_validator(mode="after")
    def _one_source(self) -> Evidence:
        if (self.signal is None) == (self.property is None):
            raise ValueError("give exactly one of signal or property")
        return self


class Check(Model):
    """A post-condition, checked by the engine after the steps: a ``signal`` that must (``holds: true``) or
    must not hold, or a named ``check`` (``runbooks.checks.CHECKS``: the VM compared with the one observed
    before the run). ``wait: true``: it may take a while to hold (a VM agent that boots), so verification
    keeps polling until the scenario's ``verify_timeout_s``; other conditions fail as soon as the VM settles."""

    signal: str | None = None
    holds: bool = True
    check: str | None = None
    wait: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        if (self.signal is None) == (self.check is None):
            raise ValueError("give exactly one of signal or check")
        return self

    def describe(self) -> str:
        if self.check is not None:
            return self.check
        return f"{self.signal}" if self.holds else f"not {self.signal}"


class Scenario(Model):
    """One way to remediate, recommended when every signal in ``when`` holds (and none in ``unless``)."""

    id: Id
    title: str = Field(..., min_length=1)
    description: str = Field("", description="what choosing this scenario means for the operator")
    when: tuple[str, ...] = Field(..., min_length=1)
    unless: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    steps: tuple[Step, ...] = Field(..., min_length=1)
    verify: tuple[Check, ...] = ()
    verify_timeout_s: float = Field(900.0, gt=0, description="how long verification may wait for conditions "
                                    "marked wait: true")
    fallout: tuple[str, ...] = Field((), description="reports of what could not carry over (runbooks.checks.FALLOUT)")
    fallback: str | None = Field(None, description="the scenario to suggest when this one fails verification")
    explicit: bool = Field(False, description="runs only when named with --scenario (never chosen for the "
                           "operator): the optional fix of a recommendation, or one that stops more than the VM")

    @property
    def run_steps(self) -> tuple[RunStep, ...]:
        """The steps that run catalogue code, in order."""
        return tuple(s for s in self.steps if isinstance(s, RunStep))

    @property
    def destructive_steps(self) -> tuple[RunStep, ...]:
        """The run steps the catalogue marks destructive (confirm mode asks before each)."""
        return tuple(s for s in self.run_steps if s.is_destructive)


class Playbook(Model):
    """A remediation family: the articles it serves, how to detect it, its scenarios (preferred first)."""

    id: Id
    title: str = Field(..., min_length=1)
    description: str = ""
    articles: tuple[str, ...] = Field(..., min_length=1)
    detect: tuple[str, ...] = Field(..., min_length=1, description="applies when any of these holds")
    signals: tuple[Signal, ...] = Field(..., min_length=1)
    scenarios: tuple[Scenario, ...] = Field((), description="ways to fix it, preferred first; none for a family "
                                            "that is only explained")
    explanation: str = Field("", description="what happened and what the operator must check or change (outside "
                             "ARM), in our own words: a playbook with one explains the VM when no fix of its runs "
                             "unasked (remediate prints it with the post-checks and writes nothing)")
    post_checks: tuple[Check, ...] = Field((), description="signals read after the fact, shown with the explanation "
                                           "(the VM is running, its agent Ready, Resource Health Available)")
    article_signals: dict[str, str] = Field(default_factory=dict, description="articleId → the signal whose holding "
                                            "picks that article among the playbook's (a diagnosis renders the "
                                            "articles the evidence picks, not every one)")
    auto_detect: bool = Field(True, description="false: considered only when named (--playbook), because its "
                              "detection reads what every diagnosis would otherwise pay for (the region's SKUs)")
    recommend: Literal["sizes", "quota", "disk-limits", "plan"] | None = Field(
        None, description="the advice a diagnosis shows (runbooks.sizing.advise): the sizes that fit the VM, its "
        "vCPU quota, or its disks against its size's limits; plan: a refused create's Marketplace plan fix")
    ambiguity: str = Field("", description="when several scenarios fit a VM and this says why the choice matters, "
                           "unattended runs refuse to pick and interactive ones ask; empty: the first that fits "
                           "(the playbook's order of preference) is taken")
    detect_unless: tuple[str, ...] = Field((), description="the playbook does not apply when any of these holds, "
                                           "though a detect signal does (a look-alike another playbook fixes)")
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The YAML file this playbook was loaded from, if any."""
        return self._path

    @property
    def explains(self) -> bool:
        """Only explains: every fix it has runs only when named (or it has none)."""
        return bool(self.explanation) and all(sc.explicit for sc in self.scenarios)

    def signal(self, signal_id: str) -> AnySignal:
        """The declared signal with this id (KeyError if none; ids are validated at load time)."""
        for s in self.signals:
            if s.id == signal_id:
                return s
        raise KeyError(signal_id)

    def scenario(self, scenario_id: str) -> Scenario:
        """The scenario with this id (KeyError if none)."""
        for s in self.scenarios:
            if s.id == scenario_id:
                return s
        raise KeyError(scenario_id)


# --- issues and validation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One problem found in a playbook file: where (file, line, field) and what."""

    path: str
    field: str
    message: str
    line: int | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


_UNION_TAGS = {"run", "manual", *SIGNAL_SOURCES}


def _untagged(loc: Loc) -> Loc:
    """Drop the discriminated-union tags pydantic inserts after a list index (``steps, 1, run, with``)."""
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (i > 0 and isinstance(loc[i - 1], int) and part in _UNION_TAGS and i + 1 < len(loc))
    )


def field_path(loc: Loc) -> str:
    """Format a pydantic location as ``scenarios[0].steps[1].run`` (union tags dropped)."""
    out = ""
    for part in _untagged(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _node_line(root: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one found)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in _untagged(loc):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                key = next((k for k, _v in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            continue  # a union tag or a key that is not in the file
        line = node.start_mark.line + 1
    return line


class _Checker:
    """Collects the issues of one file."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path, self.root = path, root
        self.issues: list[Issue] = []

    def add(self, loc: Loc, message: str) -> None:
        line = _node_line(self.root, loc) if loc else (1 if self.root is None else None)
        self.issues.append(Issue(str(self.path), field_path(loc), message, line))


def _semantic_checks(pb: Playbook, chk: _Checker) -> None:
    """Checks the schema cannot express: catalogue names and params, signal references, unique ids."""
    seen: set[str] = set()
    for i, s in enumerate(pb.signals):
        if s.id in seen:
            chk.add(("signals", i, "id"), f"duplicate signal id {s.id!r}")
        seen.add(s.id)
    declared = {s.id for s in pb.signals}

    def check_ref(loc: Loc, ref: str) -> None:
        if ref not in declared:
            chk.add(loc, f"unknown signal {ref!r}; declared: {', '.join(sorted(declared))}")

    for i, ref in enumerate(pb.detect):
        check_ref(("detect", i), ref)
    for i, ref in enumerate(pb.detect_unless):
        check_ref(("detect_unless", i), ref)
    if len(set(pb.articles)) != len(pb.articles):
        chk.add(("articles",), "an articleId is listed twice")
    scen_ids: set[str] = set()
    for si, sc in enumerate(pb.scenarios):
        base: Loc = ("scenarios", si)
        if sc.id in scen_ids:
            chk.add((*base, "id"), f"duplicate scenario id {sc.id!r}")
        scen_ids.add(sc.id)
        for key, refs in (("when", sc.when), ("unless", sc.unless)):
            for i, ref in enumerate(refs):
                check_ref((*base, key, i), ref)
        for i, ev in enumerate(sc.evidence):
            if ev.signal is not None:
                check_ref((*base, "evidence", i, "signal"), ev.signal)
        for i, ck in enumerate(sc.verify):
            if ck.signal is not None:
                check_ref((*base, "verify", i, "signal"), ck.signal)
            elif ck.check not in CHECKS:
                chk.add((*base, "verify", i, "check"),
                        f"unknown check {ck.check!r}; known: {', '.join(sorted(CHECKS))}")
        for i, name in enumerate(sc.fallout):
            if name not in FALLOUT:
                chk.add((*base, "fallout", i), f"unknown fallout report {name!r}; known: {', '.join(sorted(FALLOUT))}")
        for i, step in enumerate(sc.steps):
            if isinstance(step, RunStep):
                _check_run_step(step, (*base, "steps", i), chk)
    if not pb.scenarios and not pb.explanation:
        chk.add(("scenarios",), "a playbook without scenarios must have an explanation")
    for i, ck in enumerate(pb.post_checks):
        if ck.signal is None:
            chk.add(("post_checks", i, "check"), "post-checks are signals (what ARM shows now), not checks")
        else:
            check_ref(("post_checks", i, "signal"), ck.signal)
    claimed = {a.lower() for a in pb.articles}
    for article_id, ref in pb.article_signals.items():
        if article_id.lower() not in claimed:
            chk.add(("article_signals", article_id), f"articleId {article_id!r} is not in this playbook's articles")
        check_ref(("article_signals", article_id), ref)
    for si, sc in enumerate(pb.scenarios):
        if sc.fallback is not None and (sc.fallback not in scen_ids or sc.fallback == sc.id):
            chk.add(("scenarios", si, "fallback"), f"unknown scenario {sc.fallback!r}")


def _check_run_step(step: RunStep, loc: Loc, chk: _Checker) -> None:
    steps = catalog()
    spec = steps.get(step.run)
    if spec is None:
        chk.add((*loc, "run"), f"unknown step {step.run!r}; known: {', '.join(sorted(steps))}")
        return
    try:
        spec.params.model_validate(step.with_)
    except ValidationError as e:
        for err in e.errors():
            msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "extra_forbidden":
                known = ", ".join(spec.params.model_fields) or "none"
                msg = f"unknown parameter of {step.run} (parameters: {known})"
            chk.add((*loc, "with", *err["loc"]), msg)
    if step.destructive is not None and step.destructive != spec.destructive:
        chk.add(
            (*loc, "destructive"),
            f"the catalogue says {step.run} is {'destructive' if spec.destructive else 'not destructive'}",
        )


# libyaml's safe loader (in PyYAML's wheels) parses the playbooks 10x faster than the pure-Python one: a job
# loads them all before its first read of the VM, a sweep before its first page.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_file(path: str | Path, raw: bytes | None = None) -> tuple[Playbook | None, list[Issue]]:
    """Validate one playbook file (``raw``: its bytes, already read); return the playbook (None if the schema
    rejects it) and its issues."""
    p = Path(path)
    try:
        text = (raw if raw is not None else p.read_bytes()).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [Issue(str(p), "", f"cannot read: {e}")]
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
        data = yaml.load(text, Loader=_YAML_LOADER)  # a safe loader (C or Python)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        return None, [Issue(str(p), "", f"invalid YAML: {problem}", line)]
    chk = _Checker(p, root)
    if not isinstance(data, dict):
        chk.add((), "a playbook is a mapping (id:, title:, articles:, signals:, scenarios:)")
        return None, chk.issues
    try:
        pb = Playbook.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        for err in errors:
            loc = tuple(err["loc"])
            if err["type"] == "too_short" and any(
                tuple(o["loc"])[: len(loc)] == loc and o["loc"] != err["loc"] for o in errors
            ):
                continue  # an item failed, so the list looks short: the item's own error says why
            chk.add(loc, "unknown field" if err["type"] == "extra_forbidden" else err["msg"])
        return None, chk.issues
    pb._path = p
    _semantic_checks(pb, chk)
    if pb.id != p.stem:
        chk.add(("id",), f"id {pb.id!r} differs from the file name {p.stem!r}")
    return pb, chk.issues


def _raise_first(issues: Sequence[Issue]) -> None:
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more; run 'invoke playbooks.validate')" if len(errors) > 1 else ""
        raise PlaybookError(f"{errors[0]}{more}")


_LOADED: dict[tuple[str, str], Playbook] = {}  # (file, sha256 of its text) → the playbook (frozen): parsed once


def load_playbook(path: str | Path) -> Playbook:
    """Load and fully validate one playbook file; PlaybookError names file, line and field. A file whose text
    was loaded before is not parsed again (parsing the shipped playbooks costs more than a diagnosis' reads)."""
    try:
        raw: bytes | None = Path(path).read_bytes()
    except OSError:
        raw = None
    key = (str(Path(path).resolve()), hashlib.sha256(raw).hexdigest()) if raw is not None else None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    pb, issues = check_file(path, raw)  # the very bytes the key was made of
    _raise_first(issues)
    assert pb is not None  # no error issues means the schema accepted it
    if key is not None:
        _LOADED[key] = pb
    return pb


def default_playbooks_dir() -> Path:
    """The shipped playbooks, or env ``RUNBOOKS_PLAYBOOKS``. ``runbooks/_playbooks`` is a symlink to the repo's
    ``playbooks/`` in a checkout and a real folder inside the wheel (the Automation sandbox has no checkout)."""
    env = os.environ.get("RUNBOOKS_PLAYBOOKS")
    return Path(env) if env else (Path(runbooks.__file__).resolve().parent / "_playbooks").resolve()


def _playbook_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such playbooks folder; set RUNBOOKS_PLAYBOOKS or pass --dir")
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def _cross_checks(loaded: Iterable[Playbook]) -> list[Issue]:
    issues: list[Issue] = []
    owner: dict[str, Playbook] = {}
    ids: dict[str, Playbook] = {}
    for pb in loaded:
        path = str(pb.path or pb.id)
        if pb.id in ids:
            issues.append(Issue(path, "id", f"playbook id {pb.id!r} also defined in {ids[pb.id].path}"))
        ids.setdefault(pb.id, pb)
        for i, article_id in enumerate(pb.articles):
            other = owner.get(article_id.lower())
            if other is not None and other is not pb:
                issues.append(
                    Issue(
                        path,
                        f"articles[{i}]",
                        f"articleId {article_id!r} is also claimed by playbook {other.id!r} ({other.path})",
                    )
                )
            owner.setdefault(article_id.lower(), pb)
    return issues


def load_playbooks(directory: str | Path | None = None) -> dict[str, Playbook]:
    """Load every playbook of a folder (default: ``default_playbooks_dir()``), keyed by id.

    Raises PlaybookError on the first invalid file or on an articleId claimed by two playbooks.
    """
    d = Path(directory) if directory is not None else default_playbooks_dir()
    loaded = [load_playbook(f) for f in _playbook_files(d)]
    _raise_first(_cross_checks(loaded))
    return {pb.id: pb for pb in loaded}


def playbook_for_article(
    article_id: str, playbooks: dict[str, Playbook] | Iterable[Playbook] | None = None
) -> Playbook | None:
    """The playbook serving this articleId (case-insensitive), or None; loads the default folder if needed."""
    pool = load_playbooks() if playbooks is None else playbooks
    values = pool.values() if isinstance(pool, dict) else pool
    return next((pb for pb in values if article_id.lower() in {a.lower() for a in pb.articles}), None)


def lint(playbooks_dir: str | Path | None = None, corpus_dir: str | Path | None = None) -> list[Issue]:
    """Every issue of every playbook in a folder, cross-file ones, and articleIds missing from a corpus."""
    d = Path(playbooks_dir) if playbooks_dir is not None else default_playbooks_dir()
    issues: list[Issue] = []
    loaded: list[Playbook] = []
    for f in _playbook_files(d):
        pb, file_issues = check_file(f)
        issues += file_issues
        if pb is not None:
            loaded.append(pb)
    issues += _cross_checks(loaded)
    if corpus_dir is not None:
        issues += _corpus_checks(loaded, corpus_dir)
    return issues


def _corpus_checks(loaded: Iterable[Playbook], corpus_dir: str | Path) -> list[Issue]:
    from runbooks.articles import load_corpus, read_manifest

    rows = read_manifest(corpus_dir)
    known = [r["articleId"] for r in rows] if rows else [a.article_id for a in load_corpus(corpus_dir)]
    known_set = set(known)
    by_lower = {k.lower(): k for k in known}
    issues: list[Issue] = []
    for pb in loaded:
        chk = _Checker(pb.path or Path(pb.id), _compose(pb.path))
        for i, article_id in enumerate(pb.articles):
            if article_id in known_set:
                continue
            spelled = by_lower.get(article_id.lower())
            hint = f"; the corpus spells it {spelled!r}" if spelled else ""
            chk.add(("articles", i), f"articleId {article_id!r} is not in the corpus {corpus_dir}{hint}")
        issues += chk.issues
    return issues


def _compose(path: Path | None) -> yaml.Node | None:
    if path is None:
        return None
    try:
        return yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
