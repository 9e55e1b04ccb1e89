"""The audit trail of past runs, read from any store: what was planned, what was called, what came of it,
who ran it, when, and how it ended. Read-only; ``invoke runs.list`` and ``invoke runs.show`` render it."""

from __future__ import annotations

from typing import Any

from runbooks.journal import RunJournal, Store

# A run's status: how its last attempt ended, or "unfinished" (running now, or killed: resume it). "stopped": the
# operator declined a step; like a failed run, the VM's next remediate resumes it.
SUCCEEDED, FAILED, STOPPED, UNFINISHED = "succeeded", "failed", "stopped", "unfinished"


def _status(events: list[dict[str, Any]]) -> str:
    last_end = max((i for i, e in enumerate(events) if e.get("event") == "run-end"), default=None)
    if last_end is None or any(e.get("event") == "step-start" for e in events[last_end + 1:]):
        return UNFINISHED  # no attempt ended, or a later attempt (a resume) has not
    return str(events[last_end].get("status") or UNFINISHED)


def abandon_run(store: Store, run_id: str, *, reason: str = "") -> dict[str, Any]:
    """Close an unfinished (failed or interrupted) run, so the VM's next remediation plans afresh. Takes the
    VM's lock (a running run is refused with who holds it); writes nothing to Azure. Snapshots the run made are
    kept: ``runs.show`` names them."""
    from runbooks.errors import JournalError

    journal = store.open(run_id)
    plan = journal.plan()
    status = _status(journal.events())
    if status not in (UNFINISHED, FAILED, STOPPED):
        raise JournalError(f"run {run_id} is {status}: only an unfinished, stopped or failed run can be abandoned")
    with store.lock(plan.vm_id, run_id) as lock:
        active = store.active_run(plan.vm_id)
        if active is None or active.run_id != run_id:
            raise JournalError(f"run {run_id} is not the unfinished run of {plan.ref}; nothing to abandon")
        journal.lock = lock
        journal.append({"event": "run-abandoned", "reason": reason or "closed by the operator"})
        journal.finish("abandoned")
    return run_summary(store.open(run_id), store)


def run_summary(journal: RunJournal, store: Store | None = None) -> dict[str, Any]:
    """One row of ``runs.list``: the run, the VM, who, when, status and counts."""
    plan, events = journal.plan(), journal.events()
    start = next((e for e in events if e.get("event") == "run-start"), {})
    ends = [e for e in events if e.get("event") == "run-end"]
    failures = [e for e in events if e.get("event") == "run-failed"]
    done = {int(e["index"]) for e in events if e.get("event") == "step-done" and "index" in e}
    status = _status(events)
    fallbacks = sum(1 for e in events if e.get("event") == "call-fallback")
    row: dict[str, Any] = {
        "run_id": journal.run_id, "vm": plan.ref, "vm_id": plan.vm_id, "playbook": plan.playbook,
        "scenario": plan.scenario, "status": status,
        "user": start.get("user"), "host": start.get("host"), "pid": start.get("pid"),
        "planned": plan.created, "started": start.get("t") or (events[0].get("t") if events else None),
        "ended": ends[-1].get("t") if ends and status != UNFINISHED else None,
        "attempts": len(ends) + (1 if status == UNFINISHED and events else 0),
        "steps_done": len(done), "steps_total": len(plan.steps),
        "calls_made": sum(1 for e in events if e.get("event") == "call-done"),
        # a refusal the call's fallback answered (``call-fallback``) is not a failed call: the fallback is counted
        "calls_failed": sum(1 for e in events if e.get("event") == "call-failed") - fallbacks,
        "calls_fallen_back": fallbacks,
        "error": failures[-1].get("error") if failures and status == FAILED else None,
    }
    if store is not None and status == UNFINISHED:
        holder = store.holder(plan.vm_id)
        row["held_by"] = holder if holder and holder.get("run_id") == journal.run_id else None
    return row


def list_runs(store: Store) -> list[dict[str, Any]]:
    """Every run in the store, newest first."""
    rows = [run_summary(store.open(run_id), store) for run_id in store.run_ids()]
    return sorted(rows, key=lambda r: str(r.get("started") or r.get("planned") or ""), reverse=True)


def show_run(store: Store, run_id: str) -> dict[str, Any]:
    """One run in full: the summary, the plan's steps and calls with what happened to each, and every event."""
    journal = store.open(run_id)
    plan, events = journal.plan(), journal.events()
    steps = []
    for i, step in enumerate(plan.steps):
        mine = [e for e in events if e.get("index") == i or e.get("step") == step.name]
        state = ("done" if any(e.get("event") == "step-done" for e in mine)
                 else "failed" if any(e.get("event") == "call-failed" for e in mine)
                 else "started" if any(e.get("event") == "step-start" for e in mine) else "not run")
        calls = []
        for call in step.calls:
            about = [e for e in mine if e.get("resource") == call.resource_id and e.get("op") == call.op]
            result = next((e for e in reversed(about) if e.get("event") in ("call-done", "call-failed")), None)
            calls.append({"op": call.op, "resource": call.resource_id, "summary": call.summary,
                          "result": ("done" if result and result["event"] == "call-done"
                                     else f"failed: {result.get('code') or result.get('error')}" if result
                                     else "started" if about else "not made"),
                          "at": (result or (about[-1] if about else {})).get("t")})
        steps.append({"index": i + 1, "name": step.name, "summary": step.summary, "kind": step.kind,
                      "destructive": step.destructive, "state": state, "calls": calls})
    return {**run_summary(journal, store), "fingerprint": plan.fingerprint, "store": store.describe(),
            "steps": steps, "events": events}


def _when(t: object) -> str:
    """An ISO timestamp to the second, UTC (the journal writes UTC)."""
    return f"{str(t)[:19]}Z" if t else "-"


SHORT_RUN_ID = 8  # runs.show, abandon and rollback accept any unique prefix of a run id


def runs_table(rows: list[dict[str, Any]]) -> str:
    """One row per run within 100 columns: a run id by its first characters (``--json`` has them whole)."""
    from runbooks.text import table

    if not rows:
        return "no runs"
    body = [(r["run_id"][:SHORT_RUN_ID], r["status"], _when(r.get("started")),
             f"{r.get('user') or '?'}@{r.get('host') or '?'}"[:20], f"{r['steps_done']}/{r['steps_total']}",
             r["calls_made"], f"{r['vm']} / {r['scenario']}") for r in rows]
    lines = table(("RUN", "STATUS", "STARTED", "WHO", "STEPS", "CALLS", "VM / SCENARIO"), body)
    return "\n".join([*lines, f"{len(rows)} run(s)"])


def run_text(rec: dict[str, Any]) -> str:
    lines = [f"Run {rec['run_id']}: {rec['status']}",
             f"  VM:       {rec['vm']}",
             f"  scenario: {rec['scenario']} (playbook {rec['playbook']}), fingerprint {rec['fingerprint']}",
             f"  who:      {rec.get('user') or '?'} on {rec.get('host') or '?'} (pid {rec.get('pid') or '?'})",
             f"  when:     planned {rec.get('planned')}, started {rec.get('started') or '-'}, "
             f"ended {rec.get('ended') or '-'} ({rec['attempts']} attempt(s))",
             f"  store:    {rec['store']}"]
    if rec.get("held_by"):
        lines.append(f"  running:  its lock is held since {rec['held_by'].get('since')}")
    if rec.get("error"):
        lines.append(f"  error:    {rec['error']}")
    lines.append(f"  steps ({rec['steps_done']}/{rec['steps_total']} done, {rec['calls_made']} call(s) made, "
                 f"{rec['calls_failed']} failed" + (f", {rec['calls_fallen_back']} made as their fallback instead"
                                                    if rec.get("calls_fallen_back") else "") + "):")
    for s in rec["steps"]:
        flag = " [destructive]" if s["destructive"] else ""
        lines.append(f"    {s['index']:>2}. {s['name']}{flag}: {s['state']} — {s['summary']}")
        for c in s["calls"]:
            lines.append(f"          {c['result']:<10} {c['summary']}" + (f"  ({c['at']})" if c.get("at") else ""))
    from runbooks.text import fit_lines

    return fit_lines(lines)
