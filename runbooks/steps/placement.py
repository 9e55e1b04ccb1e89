"""Steps on a VM's availability set: the members share one hardware cluster while any of them holds an
allocation, so moving the set to a cluster that can host a size (or has capacity) means deallocating every
member, then starting them again, the VM of the run first (it is the one whose size must be placed).

The members are read with the VM (fact ``placement``); each member's power state is part of the predicted
state, so "deallocate the set, resize, start the set" plans as three changes, and a re-run skips what holds.
"""

from __future__ import annotations

from typing import Any

from runbooks.azure import Call, resource_parts
from runbooks.changes import Action, Change, Expect, NoChange, Outcome, StepContext
from runbooks.errors import StepRefused
from runbooks.observe import Observation
from runbooks.steps.power import TEMP_DISK_NOTE, existing_vm
from runbooks.steps.registry import NoParams, step

START_ATTEMPTS = 3  # a member Azure cannot place is tried this often (capacity comes back), then reported


def _member_call(vm_id: str, op: str, verb: str) -> Call:
    p = resource_parts(vm_id)
    return Call("compute", f"virtual_machines.{op}", {"resource_group_name": p.resource_group, "vm_name": p.name},
                vm_id, "update", f"{verb} VM {p.name}")


def _set_name(state: Observation) -> str:
    if state.availability_set is None:
        raise StepRefused(f"{state.ref} is in no availability set (or it could not be read); nothing to do for a set")
    return str(state.availability_set.get("name") or "")


def _vms(state: Observation) -> list[tuple[str, str, str]]:
    """(id, name, power state) of the VM, then of the other members by name."""
    vm = state.view(state.vm_id)
    members = sorted(((str(m.get("id") or mid), str(m.get("name") or resource_parts(mid).name),
                       str(m.get("powerState") or "unknown")) for mid, m in state.members.items()),
                     key=lambda t: t[1].lower())
    return [(state.vm_id, state.ref.name, str(vm.get("powerState") or "unknown")), *members]


def _undo_deallocate_set(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    if now.vm is None:
        return "the VM no longer exists"
    running = [vid.lower() for vid, _, power in _vms(before) if power == "running"]
    if not running:
        return NoChange("no VM of the set was running before the deallocate")
    return _start_in_order(now, running, "start again the VMs of the set that were running")


@step("deallocate-set", "deallocate the VM and every member of its availability set that holds hardware, so the "
      "set may be placed on another cluster (every member is down until started again)", destructive=True,
      reads=("placement", "instance-view"), undo=_undo_deallocate_set)
def deallocate_set(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Deallocate every VM of the set that is not deallocated, in parallel (one confirmation for the set)."""
    existing_vm(state, "deallocate")
    name = _set_name(state)
    vms = _vms(state)
    goal = tuple(Expect(vid, "powerState", "deallocated") for vid, _, _ in vms)
    stopping = [(vid, vname, power) for vid, vname, power in vms if power != "deallocated"]
    if not stopping:
        return NoChange(f"every VM of availability set {name} is deallocated", goal=goal)
    wave = tuple(Action(_member_call(vid, "begin_deallocate", "deallocate"), (Expect(vid, "powerState",
                                                                                      "deallocated"),))
                 for vid, _, _ in stopping)
    down = ", ".join(f"{vname} ({power})" for _, vname, power in stopping)
    notes = [f"every VM of {name} is down until started again: {down}", TEMP_DISK_NOTE + " on each of them",
             "dynamic public IP addresses of these VMs are released: they change when the VMs start again"]
    notes += [f"{vname} was {power}, not running: it is left deallocated" for _, vname, power in stopping
              if power != "running" and vname.lower() != state.ref.name.lower()]
    return Change(f"deallocate {len(stopping)} VM{'s' if len(stopping) != 1 else ''} of availability set {name}: "
                  + ", ".join(vname for _, vname, _ in stopping), waves=(wave,), notes=tuple(notes))


def _start_in_order(state: Observation, ids: list[str], summary: str) -> Outcome:
    """Start the VMs of ``ids`` (lower ids) that are not running: the first one alone (it places the set), then
    the others together (they join its cluster)."""
    by_id = {vid.lower(): (vid, vname, power) for vid, vname, power in _vms(state)}
    chosen = [by_id[i] for i in ids if i in by_id]
    goal = tuple(Expect(vid, "powerState", "running") for vid, _, _ in chosen)
    todo = [(vid, vname) for vid, vname, power in chosen if power != "running"]
    if not todo:
        names = [vname for _, vname, _ in chosen]
        return NoChange(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} running", goal=goal)
    actions = [Action(_member_call(vid, "begin_start", "start"), (Expect(vid, "powerState", "running"),),
                      attempts=START_ATTEMPTS) for vid, _ in todo]
    waves = (tuple(actions[:1]), tuple(actions[1:])) if len(actions) > 1 else (tuple(actions),)
    order = todo[0][1] + (f" first, then {', '.join(vname for _, vname in todo[1:])} together" if todo[1:] else "")
    return Change(f"{summary}: {order}", waves=waves, keep_going=True)


@step("start-set", "start the VM, then the members of its availability set that were running when the run began",
      reads=("placement", "instance-view"),
      undo_note="the VMs it started are left running (deallocate them by hand if that is wanted)")
def start_set(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Start the VM first (the set is placed where its size fits), then together every member that was running
    before the run. A member Azure cannot place is tried again (``START_ATTEMPTS``); the others still start, and
    the step fails naming every VM that is not running."""
    existing_vm(state, "start")
    name = _set_name(state)
    were_running = sorted((vid.lower() for vid, m in ctx.observed.members.items()
                           if str(m.get("powerState")) == "running"),
                          key=lambda i: str(ctx.observed.members[i].get("name") or i).lower())
    outcome = _start_in_order(state, [state.vm_id.lower(), *were_running], f"start the VMs of availability set {name}")
    if isinstance(outcome, Change):
        kept = [str(m.get("name")) for vid, m in ctx.observed.members.items() if vid.lower() not in were_running]
        were, stay = ("was", "stays") if len(kept) == 1 else ("were", "stay")
        notes: tuple[str, ...] = (f"{', '.join(sorted(kept))} {were} not running before the run and {stay} "
                                  "deallocated",) if kept else ()
        if len(outcome.waves) > 1:
            notes += (f"the other members start on the cluster {state.ref.name} is placed on: one whose size that "
                      "cluster does not offer cannot start there, and the run names it (resize it, then start it)",)
        return Change(outcome.summary, waves=outcome.waves, notes=notes, keep_going=True)
    return outcome
