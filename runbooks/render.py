"""Text for people: diagnosis, plan (every step, every call, the VM model diff), outcome. Plain lines that
read well in a terminal and in an Automation job's output stream."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from typing import Any

from runbooks.apply import Outcome
from runbooks.detect import Diagnosis
from runbooks.plan import ABSENT, Plan, is_secret_ref
from runbooks.playbook import Playbook, RunStep
from runbooks.text import WIDTH, fit, fit_lines, short_id, short_ids


def _short(value: Any, width: int = 70) -> str:
    """A value of the VM model diff in at most ``width`` columns: an ARM id by its last segments, a secret as its
    reference, anything else cut with an ellipsis."""
    if is_secret_ref(value):
        text = f"(secret from {value['$secret']})"
    elif isinstance(value, str):
        text = short_id(value, width)
        if len(text) > width and text != value:  # an id: its end (the name) matters most
            return "…" + text[len(text) - width + 1:]
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def diagnosis_text(d: Diagnosis) -> str:
    obs = d.observation
    lines = [f"VM {obs.ref} ({obs.location}, {obs.props.get('hardwareProfile', {}).get('vmSize')})",
             f"  status: {', '.join(obs.statuses()) or 'unknown'}"] if obs.vm is not None else [
        f"VM {obs.ref}: does not exist (its create was refused; the evidence is the refused request)"]
    for op in obs.failed_operations[:3]:
        resolved = f" (no longer stands: {op.get('resolved_by') or 'it succeeded later'}, {op['resolved_at']})" \
            if op.get("resolved_at") else ""
        lines.append(f"  failed: {op.get('operation_display') or op.get('operation')} at {op.get('time')} → "
                     f"{op.get('error_code')}: {' '.join(str(op.get('message')).split())}{resolved}")
    for img in obs.images:
        lines.append(f"  image captured from it: {img.get('name')} ({img.get('location')})")
    for entry in obs.disk_entries():
        lines.append(f"  disk {entry.get('name')}: deleteOption {entry.get('deleteOption', 'Detach')}")
    for ref in obs.props.get("networkProfile", {}).get("networkInterfaces", []):
        lines.append(f"  NIC {str(ref.get('id', '')).rsplit('/', 1)[-1]}: deleteOption "
                     f"{(ref.get('properties') or {}).get('deleteOption', 'Detach')}")
    for lk in obs.locks:
        lines.append(f"  lock {lk.get('name')}: {lk.get('properties', {}).get('level')}")
    if d.playbook is None:
        lines.append("No playbook applies: nothing here that this toolkit remediates.")
        return fit_lines(lines)
    lines.append(f"Playbook {d.playbook.id}: {d.playbook.title}")
    picked = d.articles()
    label = "  articles: " if len(picked) == len(d.playbook.articles) else "  article for this evidence: "
    lines += fit(", ".join(picked), label, "      ")
    if d.playbook.explanation:
        from runbooks.remediate import explanation_lines

        lines.append("  what it means:")
        lines += [f"      {line}" for line in explanation_lines(d) if not line.startswith("article")]
    rec = d.recommended
    for one in d.fits:
        mark = "recommended" if rec is not None and one.scenario.id == rec.id else (
            "possible" if one.fits else "not possible")
        lines.append(f"  scenario {one.scenario.id} [{mark}]: {one.scenario.title}")
        for reason in one.reasons:
            lines.append(f"      - {reason}")
        if one.scenario.description:
            lines += fit(one.scenario.description, "      ", "      ")
    if rec is not None:
        lines.append("  evidence:")
        lines += [f"      {label}: {value}" for label, value in d.evidence(rec)]
    if (advice := d.advice) is not None:
        lines.append("  advice:")
        lines += [f"      {line}" for line in advice["lines"]]
    if why := d.ambiguity():
        lines.append(f"  Choose: {why.rstrip('.')}. Pass --scenario.")
    others = [m for m in d.matched if m != d.playbook.id]
    if others:
        lines.append(f"  Also detected: {', '.join(others)} (remediate --playbook ID to use one of them)")
    return fit_lines(lines)


_MARKS = {"change": "+", "noop": "=", "manual": "?"}


def plan_text(plan: Plan) -> str:
    """Every step: ``+`` a change (``-`` when it destroys), ``=`` nothing to do and why, ``?`` a manual step."""
    obs = plan.observation
    decided = f"; {plan.decided_by}" if plan.decided_by else ""
    lines = [f"Plan {plan.run_id} for {plan.ref}:", f"  playbook {plan.playbook}, scenario {plan.scenario}{decided}",
             f"  observed: {', '.join(obs.statuses()) or 'no status'}; fingerprint {plan.fingerprint}"]
    for i, step in enumerate(plan.steps, 1):
        mark = "-" if step.destructive else _MARKS.get(step.kind, " ")
        flag = " [DESTRUCTIVE: asks first]" if step.destructive else ""
        lines.append(f"  {mark}{i:>2}. {step.name}{flag}: {step.summary}")
        for call in step.calls:  # the full ids are in --json and the plan file
            verb = _verb(call.op)
            line = f"        {verb} {short_id(call.resource_id, WIDTH - 9 - len(verb))}"
            scope, cut, rest = line.partition("/…/")
            lines += [line] if len(line) <= WIDTH or not cut else [scope + cut, f"            {rest}"]
        for note in step.notes:
            lines.append(f"        ! {note}")
    changes = sum(1 for s in plan.steps if s.kind == "change")
    lines.append(f"  {changes} step(s) change something, {len(plan.steps) - changes} do not; Azure writes: "
                 f"{plan.writes}")
    if plan.verify:
        from runbooks.progress import scaled
        from runbooks.verify import conditions

        lines.append(f"  then verify (up to {scaled(float(plan.verify_timeout_s)):g}s): "
                     f"{', '.join(c.describe for c in conditions(plan.verify))}")
    if plan.diff:
        lines.append("  VM model, before → after:")
        lines += diff_lines(plan.diff, "        ")
    return fit_lines(lines)


def diff_lines(diff: Iterable[tuple[str, Any, Any]], indent: str = "", width: int = WIDTH) -> list[str]:
    """One line per changed leaf of the VM model (``plan.model_diff``): ``path: before → after``, or ``path[item]:
    added`` / ``removed`` for a whole list item; values shortened (ids to their last segments) so that each line
    fits ``width``, or goes on a line of its own under a long path."""
    out = []
    for path, before, after in map(lambda d: (short_ids(d[0]), d[1], d[2]), diff):
        lead, room = f"{indent}{path}: ", width - len(indent) - len(path) - 2
        item = path.endswith("]") and ABSENT in (before, after)
        b, a = _short(before, width), _short(after, width)
        need = len("removed") if item else len(b) + len(a) + 3
        if need > room:  # what changed goes under the path, on a line of its own
            head = lead.rstrip()
            out += [head] if len(head) <= width else fit(head.rstrip(":"), indent, indent + "    ", width)
            lead, room = indent + "    ", width - len(indent) - 4
        if item:
            out.append(f"{lead}{'added' if before == ABSENT else 'removed'}")
            continue
        if need > room:  # the shorter keeps its length (up to half), the longer gets the rest
            half = (room - 3) // 2
            if len(b) <= len(a):
                b = _short(before, half)
                a = _short(after, room - 3 - len(b))
            else:
                a = _short(after, half)
                b = _short(before, room - 3 - len(a))
        out.append(f"{lead}{b} → {a}")
    return out


def _verb(op: str) -> str:
    method = op.rsplit(".", 1)[-1].removeprefix("begin_").removesuffix("_by_scope")  # management locks' calls
    if method == "delete":
        return "DELETE"
    if method in ("create_or_update", "create"):
        return "PUT"
    return "PATCH" if method == "update" else f"POST {method}"


def outcome_text(o: Outcome) -> str:
    done = "Rolled back" if o.plan.playbook.startswith("rollback:") else "Remediated"
    lines = [f"{done} {o.plan.ref} ({o.plan.scenario}): {o.made_calls} call(s) made, "
             f"{o.skipped_calls} already done."]
    if o.fallout:
        lines.append("Fallout:")
        lines += [f"  - {f}" for f in o.fallout]
    return fit_lines(lines)


def diagnosis_json(d: Diagnosis) -> dict[str, Any]:
    obs = d.observation
    rec = d.recommended
    return {
        "vm": obs.vm_id, "location": obs.location, "statuses": obs.statuses(),
        "failed_operations": obs.failed_operations, "images": [i.get("id") for i in obs.images],
        "disks": [{"name": e.get("name"), "deleteOption": e.get("deleteOption", "Detach")} for e in obs.disk_entries()],
        "locks": [{"name": lk.get("name"), "level": lk.get("properties", {}).get("level")} for lk in obs.locks],
        "playbook": d.playbook.id if d.playbook else None,
        "articles": list(d.playbook.articles) if d.playbook else [],
        "articles_for_evidence": d.articles(),
        "explanation": " ".join(d.playbook.explanation.split()) if d.playbook else "",
        "post_checks": [{"expects": w, "holds": ok, "seen": seen} for w, ok, seen in d.post_checks()],
        "health": obs.health,
        "signals": {k: {"holds": v.holds, "detail": v.detail} for k, v in d.signals.items()},
        "scenarios": [{"id": f.scenario.id, "fits": f.fits, "reasons": f.reasons,
                       "meaning": f.scenario.description.strip()} for f in d.fits],
        "recommended": rec.id if rec else None,
        "evidence": dict(d.evidence(rec)) if rec else {},
        "ambiguity": d.ambiguity(),
        "matched": d.matched,
        "advice": d.advice,
    }


def placeholder_values(d: Diagnosis) -> dict[str, str]:
    """Values for an article's placeholders, taken from the evidence (as the portal fills them)."""
    obs = d.observation
    values = {"vmname": obs.ref.name, "resourcegroup": obs.ref.resource_group, "subscriptionid": obs.subscription}
    codes = {str(getattr(s, "error_code", None) or "").lower() for s in (d.playbook.signals if d.playbook else ())}
    refused = next((op for op in obs.failed_operations if str(op.get("error_code") or "").lower() in codes),
                   obs.failed_operations[0] if obs.failed_operations else None)
    if refused:
        values["starttime"] = str(refused.get("time"))
        values["operationtype"] = str(refused.get("operation_display") or refused.get("operation"))
    return values


def matched_articles(d: Diagnosis, corpus_dir: str) -> list[dict[str, str]]:
    """The articles the evidence picks (``Diagnosis.articles``) found in a local corpus, rendered with their
    placeholders filled."""
    from runbooks.articles import load_corpus, render_article

    if d.playbook is None:
        return []
    corpus = {a.article_id.lower(): a for a in load_corpus(corpus_dir)}
    values = placeholder_values(d)
    return [{"articleId": a.article_id, "rendered": render_article(a, values)}
            for a in (corpus.get(i.lower()) for i in d.articles()) if a is not None]


def runbook_text(pb: Playbook, article_id: str | None = None) -> str:
    """What the toolkit does for a playbook (for an article it serves): its family and class, how it detects the
    failure, its explanation, and each scenario with its steps."""
    from runbooks.families import family, family_of

    fams = sorted({f"{f} ({family(f).class_})" for a in pb.articles if (f := family_of(a)) is not None})
    lines = [f"Article {article_id}: playbook {pb.id}" if article_id else f"Playbook {pb.id}",
             f"  {pb.title}", f"  family: {', '.join(fams) or 'none'}"]
    lines += textwrap.wrap(" ".join(pb.description.split()), 96, initial_indent="  ", subsequent_indent="  ")
    lines.append("  detected when any holds:")
    lines += [f"    - {pb.signal(d).description}" for d in pb.detect]
    if pb.explanation:
        lines.append("  what it means:")
        lines += textwrap.wrap(" ".join(pb.explanation.split()), 94, initial_indent="    ", subsequent_indent="    ")
    for sc in pb.scenarios:
        named = " (runs only when named: --scenario)" if sc.explicit else ""
        lines.append(f"  scenario {sc.id}{named}: {sc.title}")
        for i, st in enumerate(sc.steps, 1):
            if isinstance(st, RunStep):
                mark = " [destructive: asks first]" if st.is_destructive else ""
                lines.append(f"    {i}. {st.run}{mark}: {st.spec.summary}")
            else:
                lines += textwrap.wrap(f"{i}. (you) {' '.join(st.manual.split())}", 94, initial_indent="    ",
                                       subsequent_indent="       ")
    if not pb.scenarios:
        lines.append("  no scenario: nothing in ARM to change; diagnose a VM to see the event and the post-checks")
    return fit_lines(lines)
