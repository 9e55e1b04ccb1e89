"""The control API under ``/_armsim/`` (no auth): what tests and the demo use to set up and inspect
the emulated world. Everything here is also reachable in-process through ``ArmSim``.

    GET    /_armsim/info                     endpoint facts
    POST   /_armsim/reset                    empty world (default subscription only)
    POST   /_armsim/settle                   finish every pending operation now
    GET    /_armsim/scenarios                names;  POST /_armsim/scenarios/{name} {params}  seed one
    GET    /_armsim/requests?since=N         request log;  DELETE  clear it
    GET|POST|DELETE /_armsim/faults          fault rules (see armsim.faults)
    GET    /_armsim/lro?since=T              operations and their critical-path lower bound
    GET|PATCH /_armsim/config                latency scale, throttling, page size, retry hint style
    GET|PUT /_armsim/rbac                    role definitions and assignments
    POST   /_armsim/guest/{action} {"vm": id}  act inside a VM's guest: sysprep | deprovision | shutdown
    POST   /_armsim/vms/host-fault {"vm": id, "kind": "agent-unreachable" | "provisioning-timeout"}
                                             make the VM's host node faulty (a VM without a host: its next one)
    GET    /_armsim/vms/facts?id=            hidden VM facts: host node, its fault, temporary-disk fingerprint
    GET    /_armsim/disks/{content|guest}?id=  hidden disk facts (content fingerprint, guest state)
    GET|POST|DELETE /_armsim/capacity        cluster capacity limits / fail the next N allocations (compute.capacity)
    GET|POST|DELETE /_armsim/skus/restrictions   SKU restrictions for the subscription
    GET|POST|DELETE /_armsim/quota           vCPU quota limits
    GET    /_armsim/state                    the whole world as saved by --state
    POST   /_armsim/automation/fire {"jobSchedule": id}  start a job schedule's job now (armsim.automation)
    GET    /_armsim/automation/wait?job=<id>&timeout=S    block until an Automation job ends
    GET|PUT /_armsim/keyvault[/{vault}[/secrets/{name}]]  Key Vault vaults and secrets (armsim.keyvault.control)
    POST   /_armsim/subscription/state {"state": "Enabled" | "Disabled"}  a disabled subscription is read-only
    POST   /_armsim/health/events {"vm", "articleId", …}  an availability event of a VM (armsim.resourcehealth)
    POST   /_armsim/storage/accounts {"resource_group", "name", "location", "sku"?, "kind"?}  a storage account
                                             that exists at once (armsim.storage.responses.seed_account)
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from armsim import faults, scenarios
from armsim.authorization import rbac
from armsim.compute import capacity
from armsim.compute.models import GUEST_GENERALIZED
from armsim.errors import ArmError, BadRequest, NotFound
from armsim.http import ArmRequest, ArmResponse, ok

if TYPE_CHECKING:
    from armsim.app import App
    from armsim.compute.models import VirtualMachine
    from armsim.state import Subscription

CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "latency_scale": (int, float), "throttling": bool, "page_size": int, "rbac": bool,
               "retry_after": str, "latencies": dict, "buckets": dict, "sandbox_python": str,
               "sandbox_max_jobs": int, "job_time_limit_s": (int, float), "package_ca_bundle": str,
               "redeploy_deallocated": str}


def _body(req: ArmRequest) -> Any:
    if not req.body.strip():
        return {}
    try:
        return json.loads(req.body)
    except ValueError as e:
        raise BadRequest(f"Invalid JSON: {e}") from None


def handle_control(app: App, req: ArmRequest) -> ArmResponse:
    world = app.world
    parts = [p for p in req.path.split("/") if p][1:]
    head = parts[0].lower() if parts else ""
    m = req.method
    if head == "automation":  # takes the world lock itself: waiting for a job must not hold it
        from armsim.automation.responses import handle_control as automation_control

        return automation_control(world, req, parts[1:])
    with world.lock:
        world.advance()
        if head == "info" and m == "GET":
            return ok({"subscription_id": world.default.id, "tenant_id": world.default.tenant_id})
        if head == "reset" and m == "POST":
            world.reset()
            return ok({"reset": True})
        if head == "settle" and m == "POST":
            world.settle()
            return ok({"settled": True})
        if head == "scenarios":
            if m == "GET" and len(parts) == 1:
                return ok({"scenarios": sorted(scenarios.SCENARIOS)})
            if m == "POST" and len(parts) == 2:
                params = _body(req)
                if not isinstance(params, dict):
                    raise BadRequest("Scenario parameters must be a JSON object.")
                return ok(scenarios.seed(app, parts[1], **params))
        if head == "requests":
            if m == "GET":
                after = int(req.arg("since") or 0)
                return ok({"requests": [r for r in world.requests if r["seq"] > after], "last": app.seq})
            if m == "DELETE":
                world.requests.clear()
                return ok({"cleared": True})
        if head == "faults":
            if m == "GET":
                return ok({"faults": world.faults})
            if m == "POST":
                rule = faults.validate(_body(req))
                world.faults.append(rule)
                return ok(rule, status=201)
            if m == "DELETE":
                world.faults.clear()
                return ok({"cleared": True})
        if head == "lro" and m == "GET":
            since = float(req.arg("since") or 0)
            ops = [dataclasses.asdict(o) for o in world.operations.ops.values() if o.start >= since]
            return ok({"operations": ops, "critical_path": world.operations.critical_path(since),
                       "latency_scale": world.config.latency_scale})
        if head == "config":
            if m == "PATCH":
                changes = _body(req)
                if not isinstance(changes, dict):
                    raise BadRequest("Config changes must be a JSON object.")
                for key, value in changes.items():
                    if key not in CONFIG_KEYS or not isinstance(value, CONFIG_KEYS[key]):
                        raise BadRequest(f"Unknown or mistyped config key '{key}'.")
                    if key == "redeploy_deallocated" and value not in ("refuse", "start"):
                        raise BadRequest("Config 'redeploy_deallocated' must be 'refuse' or 'start'.")
                    setattr(world.config, key, value)
            if m in ("GET", "PATCH"):
                return ok(dataclasses.asdict(world.config))
        if head == "rbac":
            if m == "PUT":
                world.rbac = rbac.validate(_body(req))
            if m in ("GET", "PUT"):
                return ok(world.rbac)
        if head == "guest" and m == "POST" and len(parts) == 2:
            return ok(guest_action(app, parts[1], _body(req)))
        if head == "vms" and len(parts) == 2:
            if m == "POST" and parts[1] == "host-fault":
                return ok(host_fault(app, _body(req)))
            if m == "GET" and parts[1] == "facts":
                return ok(vm_facts(app, req.arg("id") or ""))
        if head in ("capacity", "skus", "quota"):
            return ok(capacity_control(app, head, m, parts[1:], _body(req)))
        if head == "disks" and m == "GET" and len(parts) == 2:
            disk_id = req.arg("id") or ""
            for sub in world.subscriptions.values():
                d = sub.compute.disks.get(disk_id.lower()) or sub.compute.snapshots.get(disk_id.lower())
                if d is not None:
                    return ok({"id": d.id, "content": d.content, "guest": d.guest})
            raise NotFound(f"No disk or snapshot '{disk_id}'.")
        if head == "keyvault":
            from armsim.keyvault import control as keyvault_control

            return ok(keyvault_control.handle(world, m, parts[1:], _body(req), req.base_url))
        if head == "subscription" and m == "POST" and parts[1:] == ["state"]:
            body = _body(req)
            if not isinstance(body, dict) or body.get("state") not in ("Enabled", "Disabled"):
                raise BadRequest('Body must be {"state": "Enabled" | "Disabled"} (and "subscription"?).')
            target = world.sub(body["subscription"]) if isinstance(body.get("subscription"), str) else world.default
            target.state = body["state"]
            world.dirty = True
            return ok({"subscription": target.id, "state": target.state})
        if head == "health" and m == "POST" and parts[1:] == ["events"]:
            return ok(health_event(app, _body(req)), status=201)
        if head == "storage" and m == "POST" and parts[1:] == ["accounts"]:
            from armsim.storage.responses import seed_account

            b = _body(req)
            if not isinstance(b, dict) or not all(isinstance(b.get(k), str) for k in ("resource_group", "name",
                                                                                        "location")):
                raise BadRequest("Give resource_group, name and location (strings); sku and kind are optional.")
            return ok(seed_account(world, str(b.get("subscription") or world.default.id), b["resource_group"],
                                   b["name"], location=b["location"], sku=str(b.get("sku") or "Standard_LRS"),
                                   kind=str(b.get("kind") or "StorageV2")), status=201)
        if head == "state" and m == "GET":
            return ok(world.to_state())
    raise NotFound(f"Unknown control endpoint {m} {req.path}.")


def guest_action(app: App, action: str, body: Any) -> dict[str, Any]:
    """What an administrator does inside the guest. sysprep/deprovision generalize the OS on the disk
    (and, like ``sysprep /shutdown``, stop the VM); shutdown stops it from inside (still allocated)."""
    world = app.world
    vm_id = body.get("vm") if isinstance(body, dict) else None
    if not isinstance(vm_id, str):
        raise BadRequest("Body must be {\"vm\": \"<vm resource id>\"}.")
    for sub in world.subscriptions.values():
        vm = sub.compute.vms.get(vm_id.lower())
        if vm is None:
            continue
        if vm.power_state != "running":
            raise BadRequest(f"VM '{vm.name}' is {vm.power_state}: the guest is not running.")
        if action in ("sysprep", "deprovision"):
            disk = sub.compute.disks.get((vm.os_disk_id or "").lower())
            if disk is not None:
                disk.guest = GUEST_GENERALIZED
        elif action != "shutdown":
            raise BadRequest(f"Unknown guest action '{action}'; use sysprep, deprovision or shutdown.")
        vm.power_state, vm.agent_ready = "stopped", False
        world.dirty = True
        return {"vm": vm.id, "action": action, "power_state": vm.power_state}
    raise NotFound(f"No VM '{vm_id}'.")


def _vm_sub(app: App, vm_id: str) -> tuple[Subscription, VirtualMachine | None]:
    """The subscription of a VM resource id and the VM (None if it does not exist yet). 404 for an id that
    names no VM in an existing resource group."""
    parts = vm_id.split("/")
    sub = app.world.subscriptions.get(parts[2].lower()) if len(parts) == 9 else None
    if sub is None or [p.lower() for p in (parts[1], parts[3], parts[5], parts[6], parts[7])] != [
            "subscriptions", "resourcegroups", "providers", "microsoft.compute", "virtualmachines"]:
        raise NotFound(f"No VM '{vm_id}'.")
    sub.rg(parts[4])  # 404 ResourceGroupNotFound
    return sub, sub.compute.vms.get(vm_id.lower())


def host_fault(app: App, body: Any) -> dict[str, Any]:
    """Make a VM's host node faulty (see ``armsim.compute.models``). A VM that holds an allocation gets the
    fault on its current host at once: its agent stops reporting (``VM Agent is unresponsive.``). With
    ``provisioning-timeout`` armsim then replays the VM's provisioning on that host, the way a deployment
    re-run does: a PUT of the VM's own model (caller ``armsim-seed``) that fails with ``OSProvisioningTimedOut``,
    so the activity log holds the failed "Create or Update Virtual Machine". A VM without a host (deallocated,
    or not created yet) gets the fault armed: its next create, start or redeploy lands on the faulty host."""
    from armsim.compute.models import HOST_PROVISIONING_TIMEOUT, norm_id

    if not isinstance(body, dict) or not isinstance(body.get("vm"), str) or not isinstance(body.get("kind"), str):
        raise BadRequest('Body must be {"vm": "<vm resource id>", "kind": "agent-unreachable" | '
                         '"provisioning-timeout"}.')
    vm_id = norm_id(body["vm"])
    sub, vm = _vm_sub(app, vm_id)
    if vm is not None:
        sub.compute.guard(vm, "host fault", allow_generalized=True)  # nothing may be under way on the VM
    result = sub.compute.set_host_fault(vm_id, body["kind"])
    app.world.dirty = True
    if vm is not None and not result["armed"] and body["kind"] == HOST_PROVISIONING_TIMEOUT:
        put = {"location": vm.location, "tags": dict(vm.tags), "properties": copy.deepcopy(vm.properties)}
        cfg = app.world.config
        saved = (cfg.throttling, cfg.rbac)
        cfg.throttling, cfg.rbac = False, False  # the platform's own replay, as for seeding
        try:
            resp = scenarios.call(app, "PUT", vm.id, put)
        finally:
            cfg.throttling, cfg.rbac = saved
        if resp.status >= 400:
            error = resp.body.get("error", {}) if isinstance(resp.body, dict) else {}
            raise ArmError(error.get("message", "The VM's provisioning could not be replayed."),
                           code=error.get("code"), status=resp.status)
        op = app.world.operations.get(vm.busy or "")
        if op is not None:  # a setup call: the failure is there when it returns
            op.end = min(op.end, app.world.clock())
            app.world.finish(op)
        result["operation"] = op.id if op is not None else None
    return result


def health_event(app: App, body: Any) -> dict[str, Any]:
    """Record an availability event of a VM (``armsim.resourcehealth.models.HealthState.add``)."""
    from armsim.compute.models import norm_id

    if not isinstance(body, dict) or not isinstance(body.get("vm"), str):
        raise BadRequest('Body must be {"vm": "<vm resource id>", "articleId": "…", …}.')
    sub, vm = _vm_sub(app, norm_id(body["vm"]))
    if vm is None:
        raise NotFound(f"No VM '{body['vm']}'.")
    event = sub.health.add({**body, "vm": vm.id})
    app.world.dirty = True
    return {"id": event.id, "vm": vm.id, **event.properties()}


def vm_facts(app: App, vm_id: str) -> dict[str, Any]:
    """What ARM does not show about a VM: its host node (null while deallocated), that host's fault, and the
    fingerprint of its temporary disk (new on every placement, null while deallocated)."""
    from armsim.compute.models import norm_id

    vm_id = norm_id(vm_id) if vm_id.strip("/ ") else vm_id
    sub, vm = _vm_sub(app, vm_id)
    if vm is None:
        raise NotFound(f"No VM '{vm_id}'.")
    armed = next((f.kind for f in sub.compute.host_faults.values() if f.armed_for == vm.id.lower()), None)
    return {"id": vm.id, "host": vm.host, "host_fault": sub.compute.host_fault(vm.host), "armed_fault": armed,
            "temp_disk": vm.temp_disk, "power_state": vm.power_state,
            "cluster": capacity.cluster_of(sub.compute, vm)}


def capacity_control(app: App, head: str, method: str, rest: list[str], body: Any) -> dict[str, Any]:
    """The allocator's knobs (default subscription unless the body names ``subscription``):
    ``capacity`` (limits and fail-next rules), ``skus/restrictions``, ``quota``."""
    sub_id = body.get("subscription") if isinstance(body, dict) else None
    state = app.world.sub(sub_id).compute if isinstance(sub_id, str) else app.world.default.compute
    tables = {"capacity": ("capacity_limits", "allocation_failures"), "skus": ("sku_restrictions",),
              "quota": ("quota_limits",)}[head]
    if head == "skus" and rest != ["restrictions"]:
        raise NotFound("Unknown control endpoint; use /_armsim/skus/restrictions.")
    if method == "GET":
        return {t: [dataclasses.asdict(v) for v in getattr(state, t).values()] for t in tables}
    if method == "DELETE":
        for t in tables:
            getattr(state, t).clear()
        app.world.dirty = True
        return {"cleared": True}
    if method != "POST" or not isinstance(body, dict):
        raise BadRequest("POST a JSON object.")
    app.world.dirty = True
    setter = {"capacity": capacity.set_capacity, "skus": capacity.restrict_sku, "quota": capacity.set_quota}[head]
    return setter(state, body)
