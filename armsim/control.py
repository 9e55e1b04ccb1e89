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
    GET    /_armsim/disks/{content|guest}?id=  hidden disk facts (content fingerprint, guest state)
    GET    /_armsim/state                    the whole world as saved by --state
    POST   /_armsim/automation/fire {"jobSchedule": id}  start a job schedule's job now (armsim.automation)
    GET    /_armsim/automation/wait?job=<id>&timeout=S    block until an Automation job ends
    GET|PUT /_armsim/keyvault[/{vault}[/secrets/{name}]]  Key Vault vaults and secrets (armsim.keyvault.control)
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from armsim import faults, scenarios
from armsim.authorization import rbac
from armsim.compute.models import GUEST_GENERALIZED
from armsim.errors import BadRequest, NotFound
from armsim.http import ArmRequest, ArmResponse, ok

if TYPE_CHECKING:
    from armsim.app import App

CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "latency_scale": (int, float), "throttling": bool, "page_size": int, "rbac": bool,
               "retry_after": str, "latencies": dict, "buckets": dict, "sandbox_python": str,
               "sandbox_max_jobs": int, "job_time_limit_s": (int, float), "package_ca_bundle": str}


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
