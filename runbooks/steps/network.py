"""Steps on a VM's network interfaces. Azure changes the NIC set of a deallocated VM only, keeps at least one NIC on
it with exactly one primary, and takes no more NICs than its size allows (nor accelerated networking on a size
without it): the step refuses, before any write, a list Azure would refuse."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runbooks.changes import Action, Change, Expect, NoChange, Outcome, StepContext
from runbooks.errors import StepRefused
from runbooks.observe import Observation, dotted, requested_nics
from runbooks.steps.power import existing_vm, vm_call
from runbooks.steps.registry import StepParams, step

_ALLOCATED = ("running", "starting", "stopped", "stopping")
_PROFILE = "properties.networkProfile.networkInterfaces"


class NicParams(StepParams):
    nics: str = Field("requested", min_length=1, pattern=r"^[-\w./(),]+$",
                      description="'requested': the NIC list a refused write of the VM asked for (from the activity "
                      "log's request body); or NIC resource ids separated by commas, the first one primary")


def _name(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 1)[-1]


def _wanted(state: Observation, params: NicParams, ctx: StepContext) -> list[tuple[str, bool]]:
    """The NICs to set, each (id, primary): exactly one primary, never none."""
    if params.nics.lower() == "requested":
        asked = requested_nics(ctx.observed)
        if asked is None:
            raise StepRefused(f"{state.ref}: no standing refused write in the activity log asked for a NIC list; "
                              "pass --set set-network-interfaces.nics=NIC_ID,NIC_ID (the first one primary)")
        refs: list[tuple[str, Any]] = [(str(r["id"]), r.get("primary")) for r in asked[1]]
    else:
        refs = [(rid, i == 0) for i, rid in enumerate(x.strip() for x in params.nics.split(",") if x.strip())]
    if not refs:
        raise StepRefused(f"{state.ref}: a VM keeps at least one NIC and the list asked for has none; to replace a "
                          "NIC, name the NICs to keep with --set set-network-interfaces.nics=NIC_ID,…")
    if len({rid.lower() for rid, _ in refs}) != len(refs):
        raise StepRefused(f"{state.ref}: the NIC list names a NIC twice: {', '.join(_name(r) for r, _ in refs)}")
    if len(refs) == 1:
        return [(refs[0][0], True)]
    primaries = [_name(rid) for rid, primary in refs if primary]
    if len(primaries) != 1:
        raise StepRefused(f"{state.ref}: a VM with several NICs has exactly one primary; the list asked for has "
                          f"{len(primaries)} ({', '.join(primaries) or 'none'})")
    return [(rid, bool(primary)) for rid, primary in refs]


def _current(view: dict[str, Any]) -> list[tuple[str, bool]]:
    refs = dotted(view, _PROFILE) or []
    return [(str(r.get("id", "")), bool(dotted(r, "properties.primary")) or len(refs) == 1) for r in refs]


def _nic_view(state: Observation, rid: str) -> dict[str, Any]:
    return state.view(rid)


def _check_fits(state: Observation, wanted: list[tuple[str, bool]]) -> None:
    """What Azure would refuse: a NIC attached to another VM, more NICs than the size takes, accelerated networking
    on a size without it (the size's limits from ``resourceSkus``, when read)."""
    from runbooks import sizing

    own = state.vm_id.lower()
    for rid, _ in wanted:
        nic = _nic_view(state, rid)
        if rid.lower() in state.resources and not nic.get("exists"):  # read, and not found
            raise StepRefused(f"{state.ref}: NIC {_name(rid)} does not exist")
        holder = str(dotted(nic, "properties.virtualMachine.id") or "")
        if holder and holder.lower() != own:
            raise StepRefused(f"{state.ref}: NIC {_name(rid)} is attached to VM {_name(holder)}")
    size = sizing.catalogue(state).get(sizing.current_size(state).lower()) if "skus" in state.gathered else None
    if size is None:
        return
    if len(wanted) > size.nics:
        raise StepRefused(f"{state.ref}: {size.name} takes {size.nics} NIC{'s' if size.nics != 1 else ''}, not "
                          f"{len(wanted)}: resize the VM first (scenario resize-for-nics)")
    fast = [_name(rid) for rid, _ in wanted if dotted(_nic_view(state, rid), "properties.enableAcceleratedNetworking")]
    if fast and not size.accelerated:
        raise StepRefused(f"{state.ref}: {size.name} does not support accelerated networking, which "
                          f"{', '.join(fast)} uses: resize the VM first (scenario resize-for-nics)")


def plan_nics(state: Observation, wanted: list[tuple[str, bool]], why: str = "") -> Outcome:
    """The PATCH that gives the VM exactly ``wanted`` (id, primary), or why nothing is needed."""
    view = existing_vm(state, "change the NICs of")
    vm_id = state.vm_id
    goal = [Expect(vm_id, f"{_PROFILE}.{i}.id", rid) for i, (rid, _) in enumerate(wanted)]
    goal += [Expect(vm_id, f"{_PROFILE}.{i}.properties.primary", primary) for i, (_, primary) in enumerate(wanted)]
    current = _current(view)
    keep = {rid.lower() for rid, _ in wanted}
    removed = [rid for rid, _ in current if rid.lower() not in keep]
    goal += [Expect(rid, "properties.virtualMachine.id", vm_id) for rid, _ in wanted]
    goal += [Expect(rid, "properties.virtualMachine", None) for rid in removed]
    names = ", ".join(_name(rid) + (" (primary)" if primary and len(wanted) > 1 else "") for rid, primary in wanted)
    if [(r.lower(), p) for r, p in current] == [(r.lower(), p) for r, p in wanted]:
        return NoChange(f"VM {state.ref.name} has the NICs {names}", goal=tuple(goal))
    power = str(view.get("powerState") or "unknown")
    if power in _ALLOCATED:
        raise StepRefused(f"{state.ref} is {power}: Azure changes the NICs of a deallocated VM only; deallocate it "
                          "first (deallocate-vm)")
    _check_fits(state, wanted)
    old = {str(r.get("id", "")).lower(): r for r in dotted(view, _PROFILE) or []}
    refs = []
    for rid, primary in wanted:
        kept = dict((old.get(rid.lower()) or {}).get("properties") or {})
        kept.pop("primary", None)
        refs.append({"id": (old.get(rid.lower()) or {}).get("id") or rid, "properties": {**kept, "primary": primary}})
    call = vm_call(state, "begin_update", "set the NICs of", parameters={"properties": {"networkProfile": {
        "networkInterfaces": refs}}})
    added = [_name(rid) for rid, _ in wanted if rid.lower() not in {r.lower() for r, _ in current}]
    notes = tuple(f"{what}: {', '.join(items)}" for what, items in (("attached", added), ("detached (kept, not "
                  "deleted)", [_name(r) for r in removed])) if items)
    return Change(f"set the NICs of VM {state.ref.name} to {names}{why}", waves=((Action(call, tuple(goal)),),),
                  notes=notes, sets=((vm_id, _PROFILE, refs),))


def _undo_set_nics(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    if now.vm is None:
        return "the VM no longer exists"
    old = _current(before.view(before.vm_id))
    if not old:
        return "the VM's NICs before the run are unknown"
    try:
        return plan_nics(now, old, " (as before the run)")
    except StepRefused as e:
        return str(e)


@step("set-network-interfaces", "give the deallocated VM exactly the NICs asked for (one primary, never none; "
      "checked first against its size's NIC limit and accelerated networking)", params=NicParams,
      reads=("nics", "activity-log", "requested-nics", "skus"), undo=_undo_set_nics)
def set_network_interfaces(state: Observation, params: NicParams, ctx: StepContext) -> Outcome:
    """PATCH ``networkProfile.networkInterfaces`` to the NICs asked for; a NIC left out is detached, not deleted."""
    how = " (requested)" if params.nics.lower() == "requested" else ""
    return plan_nics(state, _wanted(state, params, ctx), how)
