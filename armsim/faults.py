"""Fault rules: make the n-th matching request fail the way Azure sometimes does.

A rule (JSON, via ``POST /_armsim/faults``)::

    {"method": "DELETE", "path": "/virtualMachines/web-01$", "nth": 1, "times": 1,
     "action": "error", "status": 500, "error": {"code": "InternalServerError", "message": "…"}}

``path`` is a case-insensitive regular expression searched in the request path; ``nth`` (1-based)
skips earlier matches; ``times`` (default 1) is how often the rule fires (0 = forever).
Actions: ``error`` (status + error body + optional headers, e.g. 429 with Retry-After),
``async-failed`` (the request is accepted, its operation ends ``Failed`` with ``error``),
``delay`` (``seconds`` before answering), ``drop`` (close the connection without an answer;
``"when": "after"`` drops it after the request took effect — the client cannot know it did).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from armsim.errors import BadRequest
from armsim.http import ArmRequest, ArmResponse
from armsim.state import World

if TYPE_CHECKING:
    from armsim.app import Outcome

ACTIONS = ("error", "async-failed", "delay", "drop")


def validate(rule: dict[str, Any]) -> dict[str, Any]:
    """Check a rule's shape and fill its defaults; a bad rule is a 400, never a silent no-op."""
    if not isinstance(rule, dict):
        raise BadRequest("A fault rule must be a JSON object.")
    if rule.get("action") not in ACTIONS:
        raise BadRequest(f"Fault rule 'action' must be one of {', '.join(ACTIONS)}.")
    try:
        re.compile(str(rule.get("path", "")))
    except re.error as e:
        raise BadRequest(f"Fault rule 'path' is not a valid regular expression: {e}.") from None
    out = {"method": None, "path": "", "nth": 1, "times": 1, "when": "before", **rule}
    if not isinstance(out["nth"], int) or out["nth"] < 1 or not isinstance(out["times"], int) or out["times"] < 0:
        raise BadRequest("Fault rule 'nth' must be an integer >= 1 and 'times' an integer >= 0.")
    if out["action"] == "error" and not isinstance(out.get("status"), int):
        raise BadRequest("Fault rule with action 'error' needs an integer 'status'.")
    out.update(seen=0, fired=0)
    return out


def match(world: World, req: ArmRequest) -> dict[str, Any] | None:
    """The first rule that fires for this request (counting the match either way)."""
    for rule in world.faults:
        if rule["method"] and rule["method"].upper() != req.method:
            continue
        if not re.search(rule["path"], req.path, re.IGNORECASE):
            continue
        rule["seen"] += 1
        if rule["seen"] < rule["nth"] or (rule["times"] and rule["fired"] >= rule["times"]):
            continue
        rule["fired"] += 1
        return rule
    return None


def apply(rule: dict[str, Any], req: ArmRequest) -> Outcome:
    from armsim.app import Outcome

    action = rule["action"]
    if action == "error":
        error = rule.get("error") or {"code": "InternalServerError", "message": "Injected failure."}
        return Outcome(ArmResponse(rule["status"], {"error": error}, dict(rule.get("headers") or {})))
    if action == "async-failed":
        req.fault_async_error = rule.get("error") or {
            "code": "InternalExecutionError", "message": "An internal execution error occurred. Please retry later."}
        return Outcome(None)
    if action == "delay":
        return Outcome(None, delay=float(rule.get("seconds", 1.0)))
    return Outcome(None, drop=True)
