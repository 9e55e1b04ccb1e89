"""Small steps on an existing VM: start, deallocate, restart, redeploy, resize, update a property.

Each reads the VM's predicted power state and model, and either returns the call with the state it reaches
(its goal) or says why nothing is needed: a start of a running VM is a no-op with a reason, a start of a
deallocated one is a change, whatever came before it in the plan.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from runbooks.azure import Call
from runbooks.changes import JOURNAL, Action, Change, Expect, NoChange, Outcome, StepContext
from runbooks.errors import StepRefused
from runbooks.observe import Observation
from runbooks.steps.registry import NoParams, StepParams, step

TEMP_DISK_NOTE = "the temporary disk (D: on Windows, /dev/sdb1 on most Linux images) is wiped"
_DYNAMIC_IP = "dynamic private and public IP addresses may change"


def existing_vm(state: Observation, what: str) -> dict[str, Any]:
    view = state.view(state.vm_id)
    if not view.get("exists"):
        raise StepRefused(f"{state.ref}: the VM does not exist; cannot {what} it")
    if str(view.get("osState") or "").lower() == "generalized":
        raise StepRefused(f"{state.ref} is generalized: Azure refuses to {what} it (recreate it instead)")
    return view


def vm_call(state: Observation, op: str, verb: str, **extra: Any) -> Call:
    args = {"resource_group_name": state.ref.resource_group, "vm_name": state.ref.name, **extra}
    return Call("compute", f"virtual_machines.{op}", args, state.vm_id, "update", f"{verb} VM {state.ref.name}")


def _ctx(state: Observation) -> StepContext:
    return StepContext("rollback", state)


def _undo_start(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    if now.vm is None:
        return "the VM no longer exists"
    if str(before.view(before.vm_id).get("powerState")) == "deallocated":
        return deallocate_vm(now, NoParams(), _ctx(now))
    return NoChange(f"VM {now.ref.name} was not deallocated before the start")


def _undo_deallocate(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    if now.vm is None:
        return "the VM no longer exists"
    if str(before.view(before.vm_id).get("powerState")) == "running":
        return start_vm(now, NoParams(), _ctx(now))
    return NoChange(f"VM {now.ref.name} was not running before the deallocate")


def _undo_resize(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    old = before.props.get("hardwareProfile", {}).get("vmSize")
    if now.vm is None or not old:
        return "the VM no longer exists" if now.vm is None else "its size before the run is unknown"
    try:
        return resize_vm(now, ResizeParams(size=old), _ctx(now))
    except StepRefused as e:
        return str(e)


def _undo_update(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    from runbooks.observe import dotted

    if now.vm is None:
        return "the VM no longer exists"
    olds = {path: dotted(before.props, path) for path in step.params.get("properties", {})}
    unset = [p for p, v in olds.items() if v is None]
    if unset:
        return f"{', '.join(unset)} had no value before, and a PATCH cannot remove a property"
    return update_vm(now, UpdateParams(properties=olds), _ctx(now))


_MOVED = "the VM moved to another host and its temporary disk was wiped; that cannot be reversed"


@step("start-vm", "start the VM (a deallocated VM is placed on a host again)", undo=_undo_start)
def start_vm(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Start the VM unless it is running (then: nothing to do)."""
    view = existing_vm(state, "start")
    running = Expect(state.vm_id, "powerState", "running")
    if running.holds(view):
        return NoChange(f"VM {state.ref.name} is running", goal=(running,))
    call = vm_call(state, "begin_start", "start")
    return Change(f"start VM {state.ref.name} (it is {view.get('powerState') or 'in an unknown power state'})",
                  waves=((Action(call, (running,)),),))


@step("deallocate-vm", "stop the VM and release its host (it is billed for no compute until started)",
      destructive=True, undo=_undo_deallocate)
def deallocate_vm(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Deallocate the VM unless it is deallocated already. Destructive: the temporary disk is lost."""
    view = existing_vm(state, "deallocate")
    deallocated = Expect(state.vm_id, "powerState", "deallocated")
    if deallocated.holds(view):
        return NoChange(f"VM {state.ref.name} is deallocated", goal=(deallocated,))
    return Change(f"deallocate VM {state.ref.name} (it is {view.get('powerState')})",
                  waves=((Action(vm_call(state, "begin_deallocate", "deallocate"), (deallocated,)),),),
                  notes=(f"{state.ref.name} is down until started again", TEMP_DISK_NOTE, _DYNAMIC_IP))


@step("restart-vm", "restart the running VM on the same host", undo_note="a restart cannot be reversed")
def restart_vm(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Restart the VM (Azure refuses a restart of a VM that is not running)."""
    view = existing_vm(state, "restart")
    if str(view.get("powerState")) != "running":
        raise StepRefused(f"{state.ref} is {view.get('powerState')}: only a running VM can be restarted; start it")
    goal = (Expect(state.vm_id, JOURNAL, "virtual_machines.begin_restart"),
            Expect(state.vm_id, "powerState", "running"))
    return Change(f"restart VM {state.ref.name}", waves=((Action(vm_call(state, "begin_restart", "restart"), goal),),))


@step("redeploy-vm", "move the VM to a new host and start it there", destructive=True, undo_note=_MOVED)
def redeploy_vm(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Redeploy the VM: Azure shuts it down, moves it to another host node and starts it. Destructive: the
    temporary disk is lost. ARM does not show the host, so the move itself is known from the journal."""
    existing_vm(state, "redeploy")
    goal = (Expect(state.vm_id, JOURNAL, "virtual_machines.begin_redeploy"),
            Expect(state.vm_id, "powerState", "running"))
    return Change(f"redeploy VM {state.ref.name} to a new host",
                  waves=((Action(vm_call(state, "begin_redeploy", "redeploy"), goal),),),
                  notes=(f"{state.ref.name} restarts on another host: it is down for a few minutes", TEMP_DISK_NOTE,
                         _DYNAMIC_IP))


class ResizeParams(StepParams):
    size: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_-]+$",
                      description="the VM size (e.g. Standard_D4s_v5); 'requested': the size a refused resize or "
                      "create asked for (from the activity log); 'recommended': the closest size that fits")
    cover_disk_iops: bool = Field(default=False, description="with 'recommended': the size must also cap uncached "
                                  "disk IOPS and throughput at or above what the VM's disks provide")


_RESIZE_READS = ("disks", "nics", "placement", "sizes", "skus", "usages", "activity-log")


def resolve_size(state: Observation, params: ResizeParams, ctx: StepContext) -> str:
    """The concrete size a resize asks for. ``requested`` and ``recommended`` are resolved from the first
    observation (what was refused, what fits); a named size must fit the VM where it will be resized (a
    StepRefused names every reason it does not)."""
    from runbooks import sizing

    mode = params.size.lower()
    requested = sizing.requested_size(ctx.observed)
    if mode == "requested":
        if requested is None:
            raise StepRefused(f"{state.ref}: no refused resize or create in the activity log names a size; pass "
                              "--set resize-vm.size=SIZE")
        name = requested
    elif mode == "recommended":
        needs = sizing.needs_of(ctx.observed, at_least=requested, for_io=params.cover_disk_iops)
        advice = sizing.rank(state, needs)
        if not advice.fitting:
            raise StepRefused(f"{state.ref}: no size of {state.location} fits ({needs.describe()}); pass "
                              "--set resize-vm.size=SIZE to choose one")
        return advice.fitting[0].name
    else:
        name = params.size
    if "skus" not in state.gathered:
        return name  # nothing to check against (a plan made without the region's sizes): Azure decides
    known = sizing.catalogue(state)
    size = known.get(name.lower())
    if size is None:
        raise StepRefused(f"{state.ref}: {name} is not a VM size of {state.location}")
    features = sizing.needs_of(ctx.observed, for_io=params.cover_disk_iops)
    floor = sizing.Needs(0, 0.0, features.data_disks, features.nics, features.premium, features.accelerated,
                         features.generation, features.iops, features.mbps)
    why = sizing.refusals(state, size, floor)
    if why:
        raise StepRefused(f"{state.ref}: cannot resize to {size.name}: {'; '.join(why)}")
    return size.name


@step("resize-vm", "change the VM's size (validated first: region, restrictions, cluster, quota, features)",
      params=ResizeParams, reads=_RESIZE_READS, undo=_undo_resize)
def resize_vm(state: Observation, params: ResizeParams, ctx: StepContext) -> Outcome:
    """Set ``hardwareProfile.vmSize`` (a PATCH). A running VM restarts to change size."""
    view = existing_vm(state, "resize")
    target = resolve_size(state, params, ctx)
    sized = Expect(state.vm_id, "properties.hardwareProfile.vmSize", target)
    if sized.holds(view):
        return NoChange(f"VM {state.ref.name} is already {target}", goal=(sized,))
    old = (view.get("properties") or {}).get("hardwareProfile", {}).get("vmSize")
    call = vm_call(state, "begin_update", f"resize ({old} → {target})",
                    parameters={"properties": {"hardwareProfile": {"vmSize": target}}})
    notes = (f"{state.ref.name} is running: Azure restarts it to change its size",) \
        if view.get("powerState") == "running" else ()
    how = f" ({params.size.lower()})" if params.size.lower() in ("requested", "recommended") else ""
    return Change(f"resize VM {state.ref.name} from {old} to {target}{how}", waves=((Action(call, (sized,)),),),
                  notes=notes)


class UpdateParams(StepParams):
    properties: dict[str, Any] = Field(..., min_length=1, description="VM properties to set, by dotted path "
                                       "under properties (e.g. diagnosticsProfile.bootDiagnostics.enabled: true)")

    @field_validator("properties")
    @classmethod
    def _paths(cls, v: dict[str, Any]) -> dict[str, Any]:
        for path in v:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"bad property path {path!r}: dotted names, e.g. hardwareProfile.vmSize")
        return v


@step("update-vm", "set properties of the VM model (a PATCH)", params=UpdateParams, undo=_undo_update)
def update_vm(state: Observation, params: UpdateParams, ctx: StepContext) -> Outcome:
    """PATCH the given properties; nothing to do when every one already has its value."""
    view = existing_vm(state, "update")
    goal = tuple(Expect(state.vm_id, f"properties.{path}", value) for path, value in sorted(params.properties.items()))
    if all(e.holds(view) for e in goal):
        return NoChange(f"VM {state.ref.name} already has {', '.join(params.properties)} as asked", goal=goal)
    body: dict[str, Any] = {}
    for path, value in sorted(params.properties.items()):
        node = body
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    call = vm_call(state, "begin_update", f"update ({', '.join(sorted(params.properties))} of)",
                    parameters={"properties": body})
    what = ", ".join(f"{p} = {v}" for p, v in sorted(params.properties.items()))
    return Change(f"update VM {state.ref.name}: {what}", waves=((Action(call, goal),),))


@step("power-off-vm", "stop the VM's guest, keeping its host (it is still billed for compute)",
      undo=lambda before, now, planned, run: start_vm(now, NoParams(), _ctx(now)) if now.vm is not None and str(
          before.view(before.vm_id).get("powerState")) == "running" else NoChange("the VM was not running before"))
def power_off_vm(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Power the VM off unless it is stopped (or deallocated) already."""
    view = existing_vm(state, "power off")
    stopped = Expect(state.vm_id, "powerState", "stopped")
    if str(view.get("powerState")) in ("stopped", "deallocated"):
        return NoChange(f"VM {state.ref.name} is {view.get('powerState')}", goal=(
            Expect(state.vm_id, "powerState", view.get("powerState")),))
    return Change(f"power off VM {state.ref.name} (it is {view.get('powerState')})",
                  waves=((Action(vm_call(state, "begin_power_off", "power off"), (stopped,)),),))
