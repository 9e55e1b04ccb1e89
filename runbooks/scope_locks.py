"""Management locks (``Microsoft.Authorization/locks``) as the LOCK family reads them: which failed operation a
lock blocked (409 ``ScopeLocked``), which of the locks covering the VM did it, and how to name them.

A CanNotDelete lock refuses deletes; a ReadOnly lock refuses every write, POST actions included (start,
deallocate, restart, powerOff). ARM's refusal names the locked scopes ("… because following scope(s) are locked:
'<scope>'…"), so the lock that blocked an operation is the one at a named scope whose level refuses it.
"""

from __future__ import annotations

import re
from typing import Any

from runbooks.azure import scope_of_lock
from runbooks.observe import Observation

_LOCKED_SCOPES = re.compile(r"locked:\s*(.*?)\.\s*Please", re.IGNORECASE | re.DOTALL)


def lock_scope(lock: dict[str, Any]) -> str:
    """The scope a lock (its JSON) sits at."""
    return scope_of_lock(str(lock.get("id", "")))


def scope_kind(scope: str, vm_id: str) -> str:
    low = scope.lower().rstrip("/")
    if low == vm_id.lower():
        return "the VM"
    if "/resourcegroups/" not in low:
        return "the subscription"
    if "/providers/" not in low:
        return f"resource group {low.rsplit('/', 1)[-1]}"
    return f"resource {scope.rsplit('/', 1)[-1]}"


def level(lock: dict[str, Any]) -> str:
    return str((lock.get("properties") or {}).get("level") or "")


def definition(lock: dict[str, Any]) -> dict[str, Any]:
    """What makes the lock the same lock again: its name, scope, level, notes and owners."""
    props = lock.get("properties") or {}
    return {"id": str(lock.get("id", "")), "name": str(lock.get("name", "")), "scope": lock_scope(lock),
            "level": props.get("level"), "notes": props.get("notes"), "owners": list(props.get("owners") or [])}


def is_delete(operation: str) -> bool:
    return str(operation).lower().endswith("/delete")


def refuses(lock: dict[str, Any], operation: str) -> bool:
    """Does this lock refuse the operation? ReadOnly refuses every write; CanNotDelete only deletes."""
    return level(lock).lower() == "readonly" or (is_delete(operation) and level(lock).lower() == "cannotdelete")


def standing_refusals(obs: Observation) -> list[dict[str, Any]]:
    """The VM's failed operations refused ScopeLocked that still stand (newest first): not resolved by a later
    success of the same operation."""
    return [op for op in obs.failed_operations if str(op.get("error_code") or "").lower() == "scopelocked"
            and not op.get("resolved_at")]


def named_scopes(message: str) -> list[str]:
    """The locked scopes a ScopeLocked message names (lower case)."""
    m = _LOCKED_SCOPES.search(message or "")
    return [s.lower().rstrip("/") for s in re.findall(r"'([^']+)'", m.group(1))] if m else []


def blocking(obs: Observation, refusal: dict[str, Any]) -> list[dict[str, Any]]:
    """The locks covering the VM now that refused ``refusal``: those at a scope its message names (every
    covering lock whose level refuses it, when the message names none) whose level refuses that operation."""
    operation = str(refusal.get("operation") or "")
    scopes = named_scopes(str(refusal.get("message") or ""))
    return [lk for lk in obs.locks if refuses(lk, operation)
            and (not scopes or lock_scope(lk).lower().rstrip("/") in scopes)]


def blocked(obs: Observation) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The newest standing ScopeLocked refusal whose lock is still there, and that lock (or locks)."""
    for refusal in standing_refusals(obs):
        locks = blocking(obs, refusal)
        if locks:
            return refusal, locks
    return None


def describe(lock: dict[str, Any], vm_id: str) -> str:
    """``lock NAME (LEVEL) on WHERE, owners …, notes "…"``."""
    d = definition(lock)
    owners = ", ".join(str(o.get("applicationId") or o) for o in d["owners"]) or "none"
    notes = f'"{d["notes"]}"' if d["notes"] else "none"
    return f"lock {d['name']} ({d['level']}) on {scope_kind(d['scope'], vm_id)}, owners: {owners}, notes: {notes}"
