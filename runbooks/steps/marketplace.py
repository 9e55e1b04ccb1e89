"""Marketplace steps: accept the legal terms of the plan a refused VM create named (MARKET_TERMS)."""

from __future__ import annotations

from typing import Any

from runbooks.azure import Call, agreement_id, agreement_parts
from runbooks.changes import Action, Change, Expect, NoChange, Outcome, StepContext
from runbooks.errors import StepRefused
from runbooks.marketplace import terms_of
from runbooks.observe import Observation
from runbooks.steps.registry import NoParams, step

_READS = ("activity-log", "marketplace")


def _terms(state: Observation) -> tuple[str, dict[str, Any], tuple[str, str, str]]:
    """(id, JSON, (publisher, offer, plan)) of the terms the observation read, spelled as Azure answered them."""
    found = terms_of(state)
    if found is None:
        raise StepRefused(f"{state.ref}: no legal terms of a Marketplace plan were read for its refused create; "
                          "nothing to accept")
    props = found[1].get("properties") or {}
    parts = (str(props.get("publisher") or ""), str(props.get("product") or ""), str(props.get("plan") or ""))
    if not all(parts):
        parts = agreement_parts(found[0]) or parts
    return agreement_id(state.subscription, *parts), found[1], parts


def _terms_call(state: Observation, op: str, accepted: bool) -> Change:
    rid, terms, (publisher, offer, plan) = _terms(state)
    what = f"{publisher}/{offer}/{plan}"
    goal = Expect(rid, "properties.accepted", accepted)
    if op == "create":  # the terms as read (their signature included), accepted
        args: dict[str, Any] = {"offer_type": "virtualmachine", "publisher_id": publisher, "offer_id": offer,
                                "plan_id": plan,
                                "parameters": {"properties": {**(terms.get("properties") or {}), "accepted": True}}}
        summary = f"accept the legal terms of Marketplace plan {what} on subscription {state.subscription}"
    else:
        args = {"publisher_id": publisher, "offer_id": offer, "plan_id": plan}
        summary = f"cancel the acceptance of the legal terms of Marketplace plan {what}"
    call = Call("marketplace", f"marketplace_agreements.{op}", args, rid, "update", summary)
    notes = (f"licence: {(terms.get('properties') or {}).get('licenseTextLink')}",) if accepted else ()
    return Change(summary, waves=((Action(call, (goal,)),),), notes=notes)


def _undo_accept(before: Observation, now: Observation, planned: Any, run: StepContext) -> Outcome | str:
    rid, terms, parts = _terms(before)
    if (terms.get("properties") or {}).get("accepted"):
        return NoChange(f"the legal terms of Marketplace plan {'/'.join(parts)} were accepted before the run",
                        goal=(Expect(rid, "properties.accepted", True),))
    return _terms_call(before, "cancel", False)


@step("accept-marketplace-terms", "accept the legal terms of the Marketplace plan the refused create named (the "
      "operator's decision: it binds the subscription to the publisher's licence)", reads=_READS, undo=_undo_accept,
      without_vm=True)
def accept_marketplace_terms(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    rid, _, parts = _terms(state)
    goal = Expect(rid, "properties.accepted", True)
    if goal.holds(state.view(rid)):
        return NoChange(f"the legal terms of Marketplace plan {'/'.join(parts)} are accepted", goal=(goal,))
    return _terms_call(state, "create", True)
