"""Microsoft.Compute handlers: parse the request, call the model, shape ARM's response.

Handler names follow the SDK's operation names without ``begin_``.
"""

from __future__ import annotations

from typing import Any

from armsim.compute import capacity
from armsim.compute import exceptions as cx
from armsim.compute.models import ComputeState, Disk, VirtualMachine
from armsim.errors import BadRequest, InvalidParameter, NotFound, OperationNotAllowed
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.lro import Operation
from armsim.network import nic_rules
from armsim.responses import accepted, begin, operation_status, page
from armsim.state import World


def _state(world: World, subscription: str) -> ComputeState:
    return world.sub(subscription).compute


def _vm_resources(vm: VirtualMachine) -> list[str]:
    return [vm.id, *vm.disk_ids(), *(n["id"] for n in vm.nics if isinstance(n.get("id"), str))]


def _start_vm_op(world: World, req: ArmRequest, vm: VirtualMachine, kind: str,
                 failure: dict[str, Any] | None = None, **args: Any) -> Operation:
    """Start an operation on the VM. ``host`` (in ``args``, default: the VM's own) is where the operation leaves
    it. How it ends: as a matching ``async-failed`` fault rule says, else with ``failure`` if given (an error
    the request already implies), else it fails if it waits for the guest on a provisioning-timeout host."""
    state = _state(world, req.path.split("/")[2])
    args.setdefault("host", vm.host)
    op = begin(world, req, subscription=state.sub.id, kind=kind, target=vm.id,
               namespace="compute", location=vm.location, resources=_vm_resources(vm), args=args)
    if op.fail_with is None:
        op.fail_with = failure or state.guest_failure(vm, kind, args["host"])
    vm.busy = op.id
    return op


# --- virtual machines -------------------------------------------------------------------------------


def _check_capacity(state: ComputeState, rg: str, name: str, body: Any, *, patch: bool = False,
                    ) -> tuple[str, str] | None:
    """The allocator's synchronous refusals for a VM write (armsim.compute.capacity): a new VM's size, SKU
    restriction, quota and availability set; a resize's size, restriction, quota and cluster. Returns
    (old size, new size) for a resize."""
    if not isinstance(body, dict):
        return None
    rid = state.rid(rg, "virtualMachines", name)
    existing = state.vms.get(rid.lower())
    if existing is None:
        if not patch:
            capacity.check_create(state, rid, body)
        return None
    state.guard(existing, "update")
    old = str((existing.properties.get("hardwareProfile") or {}).get("vmSize") or "")
    new = capacity.check_resize(state, existing, body)
    return (old, new) if new else None


def _boot_storage(state: ComputeState, vm: VirtualMachine) -> dict[str, Any] | None:
    """The error a write or start of ``vm`` ends with because of its boot-diagnostics storage account
    (armsim.storage: missing, Premium or Blob-only, in another region), or None."""
    from armsim.storage.models import boot_diagnostics_failure

    return boot_diagnostics_failure(state.sub, vm.name, vm.location, vm.properties)


def _place(state: ComputeState, vm: VirtualMachine, created: bool, resize: tuple[str, str] | None,
           failure: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Put a new (or resized, allocated) VM on a cluster: the allocation error its operation ends with, if any,
    and the operation's extra args."""
    if created:
        state.placements.pop(vm.id.lower(), None)
        return failure or capacity.allocate(state, vm), {}
    if resize is not None and vm.host is not None:
        return failure or capacity.allocate(state, vm, resize[1], keep_cluster=True), {"old_size": resize[0]}
    return failure, {}


def create_or_update(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                     vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    resize = _check_capacity(state, resourceGroupName, vmName, req.json())
    nic_rules.check_vm_write(state, resourceGroupName, vmName, req.json())
    vm, created, failure = state.put_vm(resourceGroupName, vmName, req.json(),
                                        if_match=req.headers.get("if-match"),
                                        if_none_match=req.headers.get("if-none-match"))
    failure, args = _place(state, vm, created, resize, failure or _boot_storage(state, vm))
    op = _start_vm_op(world, req, vm, "vm.create" if created else "vm.update", failure=failure, **args)
    return accepted(world, req, op, status=201 if created else 200, body=vm.to_dict(world, state), location=False)


def update(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    resize = _check_capacity(state, resourceGroupName, vmName, req.json(), patch=True)
    nic_rules.check_vm_write(state, resourceGroupName, vmName, req.json(), patch=True)
    vm, _, _ = state.put_vm(resourceGroupName, vmName, req.json(), patch=True,
                            if_match=req.headers.get("if-match"))
    failure, args = _place(state, vm, False, resize, _boot_storage(state, vm))
    _start_vm_op(world, req, vm, "vm.update", failure=failure, **args)
    return ok(vm.to_dict(world, state))  # like Azure: 200 + body, the client polls provisioningState


def get(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    vm = state.vm(resourceGroupName, vmName)
    return ok(vm.to_dict(world, state, expand=req.arg("$expand") or ""))


def instance_view(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                  vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    return ok(state.vm(resourceGroupName, vmName).instance_view(world, state))


def list_vms(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    vms = sorted(state.vms_in(resourceGroupName), key=lambda v: v.id.lower())
    return page(req, vms, lambda v: v.to_dict(world, state), world.config.page_size)


def list_all(world: World, req: ArmRequest, subscriptionId: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    status_only = req.flag("statusOnly")
    if req.arg("$expand") and not req.arg("$filter"):
        raise InvalidParameter("The $expand=instanceView query option can only be specified if a valid $filter "
                               "option is specified.", target="$expand")
    vms = sorted(state.vms_in(None), key=lambda v: v.id.lower())

    def render(vm: VirtualMachine) -> dict[str, Any]:
        out = vm.to_dict(world, state)
        if status_only:
            out["properties"]["instanceView"] = {"statuses": vm.statuses(world)}
        return out

    return page(req, vms, render, world.config.page_size)


def delete(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    state.sub.rg(resourceGroupName)
    vm = state.vms.get(state.rid(resourceGroupName, "virtualMachines", vmName).lower())
    if vm is None:
        return ArmResponse(204)
    if vm.deleting and vm.busy:
        op = world.operations.get(vm.busy)
        if op is not None and not op.done:
            return accepted(world, req, op)  # a retried delete joins the one under way
    state.guard(vm, "delete", allow_generalized=True)
    vm.deleting, vm.provisioning_state = True, "Deleting"
    op = _start_vm_op(world, req, vm, "vm.delete", force=req.flag("forceDeletion"))
    return accepted(world, req, op)


_POWER = {
    "start": ("vm.start", "starting"),
    "powerOff": ("vm.powerOff", "stopping"),
    "deallocate": ("vm.deallocate", "deallocating"),
    "restart": ("vm.restart", "starting"),
    # "The PowerState of the VM goes from 'Running' to 'Updating', then 'Starting', and finally 'Running'"
    # (azure-docs, redeploy-to-new-node-linux, 2016); the portal shows "Updating" (jpaztech blog, 2021)
    "redeploy": ("vm.redeploy", "updating"),
}


def _power_action(action: str) -> Any:
    kind, transitional = _POWER[action]

    def handler(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                vmName: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        vm = state.vm(resourceGroupName, vmName)
        state.guard(vm, action, allow_generalized=action in ("deallocate", "powerOff"))
        if action == "restart" and vm.power_state != "running":
            raise cx.not_running(action, vm.name, vm.power_state)
        host, failure = vm.host, None
        if action == "start" and (failure := _boot_storage(state, vm)) is not None:
            pass  # refused before any placement: the VM stays where it was
        elif action == "redeploy":
            # Redeploy reallocates the VM, so Azure's support team documents it for running or stopped VMs only
            # (jpaztech blog, 2021); config.redeploy_deallocated = "start" starts a deallocated VM instead.
            if vm.power_state == "deallocated" and world.config.redeploy_deallocated != "start":
                raise cx.deallocated(action, vm.name)
            failure = capacity.check_start(state, vm, action)
            host = state.allocate(vm)  # always a host the VM was never on
        elif action == "start" and vm.host is None:
            failure = capacity.check_start(state, vm, action)
            host = state.allocate(vm)  # a deallocated VM is placed again
        op = _start_vm_op(world, req, vm, kind, failure=failure, previous=vm.power_state, host=host)
        vm.power_state = transitional
        if action == "redeploy":
            vm.provisioning_state = "Updating"
        vm.agent_ready = False
        return accepted(world, req, op)

    handler.__name__ = action
    return handler


start = _power_action("start")
power_off = _power_action("powerOff")
deallocate = _power_action("deallocate")
restart = _power_action("restart")
redeploy = _power_action("redeploy")


def generalize(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
               vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    vm = state.vm(resourceGroupName, vmName)
    state.guard(vm, "generalize", allow_generalized=True)
    if vm.power_state not in ("stopped", "deallocated"):
        raise cx.generalize_running(vm.name)
    vm.generalized = True
    vm.etag += 1
    return ArmResponse(200)  # synchronous, empty body, no LRO headers


def capture(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
            vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    vm = state.vm(resourceGroupName, vmName)
    req.json()
    if not vm.generalized:
        raise OperationNotAllowed("Capture operation cannot be completed because the VM is not generalized.")
    raise cx.capture_managed()  # every armsim VM has managed disks


def retrieve_boot_diagnostics_data(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                                   vmName: str) -> ArmResponse:
    """SAS URIs of the console screenshot and serial log: on the VM's own account, or for managed boot
    diagnostics on a storage host of the region. Refused when boot diagnostics is disabled."""
    from armsim.storage import exceptions as sx
    from armsim.storage.models import managed_blob_base

    state = _state(world, subscriptionId)
    vm = state.vm(resourceGroupName, vmName)
    bd = (vm.properties.get("diagnosticsProfile") or {}).get("bootDiagnostics") or {}
    if not bd.get("enabled"):
        raise sx.boot_diagnostics_disabled(vm.name)
    uri = bd.get("storageUri")
    container = f"bootdiagnostics-{vm.name.lower().replace('-', '')[:9]}-{vm.vm_id}"
    base = f"{uri.rstrip('/')}/{container}" if isinstance(uri, str) and uri else managed_blob_base(vm.location,
                                                                                                   vm.vm_id)
    minutes = req.arg("sasUriExpirationTimeInMinutes") or "120"
    sas = f"sv=2024-08-04&sr=b&sp=r&se=PT{minutes}M&sig=armsim"
    return ok({"consoleScreenshotBlobUri": f"{base}/{vm.name}.{vm.vm_id}.screenshot.bmp?{sas}",
               "serialConsoleLogBlobUri": f"{base}/{vm.name}.{vm.vm_id}.serialconsole.log?{sas}"})


# --- extensions -------------------------------------------------------------------------------------


def create_or_update_extension(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                               vmName: str, vmExtensionName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    ext, created = state.put_extension(resourceGroupName, vmName, vmExtensionName, req.json())
    op = begin(world, req, subscription=state.sub.id, kind="extension.create", target=ext.id, namespace="compute",
               location=ext.location, resources=[ext.vm_id])
    return accepted(world, req, op, status=201 if created else 200, body=ext.to_dict(), location=False)


def _extension(state: ComputeState, rg: str, vm_name: str, name: str) -> Any:
    vm = state.vm(rg, vm_name)
    ext = state.extensions.get(f"{vm.id}/extensions/{name}".lower())
    if ext is None:
        raise NotFound(f"The Resource 'Microsoft.Compute/virtualMachines/{vm_name}/extensions/{name}' under "
                       f"resource group '{rg}' was not found.", code="ResourceNotFound")
    return ext


def get_extension(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, vmName: str,
                  vmExtensionName: str) -> ArmResponse:
    return ok(_extension(_state(world, subscriptionId), resourceGroupName, vmName, vmExtensionName).to_dict())


def list_extensions(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                    vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    vm = state.vm(resourceGroupName, vmName)
    return ok({"value": [e.to_dict() for e in state.extensions_of(vm.id)]})


def delete_extension(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, vmName: str,
                     vmExtensionName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    vm = state.vm(resourceGroupName, vmName)
    ext = state.extensions.get(f"{vm.id}/extensions/{vmExtensionName}".lower())
    if ext is None:
        return ArmResponse(204)
    state.guard(vm, "Delete Extension")
    ext.provisioning_state = "Deleting"
    op = begin(world, req, subscription=state.sub.id, kind="extension.delete", target=ext.id, namespace="compute",
               location=ext.location, resources=[vm.id])
    return accepted(world, req, op)


# --- disks, snapshots, images --------------------------------------------------------------------------


def _disk_like(table: str) -> tuple[Any, Any, Any, Any, Any]:
    snapshot = table == "snapshots"
    kind = "snapshot" if snapshot else "disk"

    def put(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        item, created = state.put_disk(resourceGroupName, name, req.json(), snapshot=snapshot)
        source = item.creation_data.get("sourceResourceId")
        op = begin(world, req, subscription=state.sub.id, kind=f"{kind}.create", target=item.id, namespace="disk",
                   location=item.location, resources=[source] if isinstance(source, str) else [],
                   duration=None if created else world.config.latency("disk.update"))
        return accepted(world, req, op, body=item.to_dict())

    def patch(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        state._get(getattr(state, table), resourceGroupName, table, name)
        return put(world, req, subscriptionId, resourceGroupName, name)

    def get_(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        item: Disk = state._get(getattr(state, table), resourceGroupName, table, name)
        return ok(item.to_dict())

    def list_(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str | None = None) -> ArmResponse:
        state = _state(world, subscriptionId)
        items = sorted(state.items_in(getattr(state, table), resourceGroupName), key=lambda d: d.id.lower())
        return page(req, items, lambda d: d.to_dict(), world.config.page_size)

    def delete_(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        state.sub.rg(resourceGroupName)
        item = getattr(state, table).get(state.rid(resourceGroupName, table, name).lower())
        if item is None:
            return ArmResponse(204)
        if not snapshot:
            state.delete_disk(resourceGroupName, name)  # refuses while attached
        item.provisioning_state = "Deleting"
        op = begin(world, req, subscription=state.sub.id, kind=f"{kind}.delete", target=item.id, namespace="disk",
                   location=item.location)
        return accepted(world, req, op)

    return put, patch, get_, list_, delete_


(create_or_update_disk, update_disk, get_disk, list_disks, delete_disk) = _disk_like("disks")
(create_or_update_snapshot, update_snapshot, get_snapshot, list_snapshots, delete_snapshot) = _disk_like("snapshots")


def create_or_update_image(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                           imageName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    image, created = state.put_image(resourceGroupName, imageName, req.json())
    resources = [image.source_vm] if image.source_vm else []
    if image.source_vm and (vm := state.vms.get(image.source_vm.lower())) is not None:
        resources += vm.disk_ids()
    op = begin(world, req, subscription=state.sub.id, kind="image.create", target=image.id, namespace="compute",
               location=image.location, resources=resources)
    return accepted(world, req, op, status=201 if created else 200, body=image.to_dict(), location=False)


def get_image(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
              imageName: str) -> ArmResponse:
    return ok(_state(world, subscriptionId).image(resourceGroupName, imageName).to_dict())


def list_images(world: World, req: ArmRequest, subscriptionId: str,
                resourceGroupName: str | None = None) -> ArmResponse:
    state = _state(world, subscriptionId)
    items = sorted(state.items_in(state.images, resourceGroupName), key=lambda d: d.id.lower())
    return page(req, items, lambda d: d.to_dict(), world.config.page_size)


def delete_image(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                 imageName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    state.sub.rg(resourceGroupName)
    image = state.images.get(state.rid(resourceGroupName, "images", imageName).lower())
    if image is None:
        return ArmResponse(204)
    op = begin(world, req, subscription=state.sub.id, kind="image.delete", target=image.id, namespace="compute",
               location=image.location)
    return accepted(world, req, op)


# --- operation status ---------------------------------------------------------------------------------


def get_operation(world: World, req: ArmRequest, subscriptionId: str, location: str,
                  operationId: str) -> ArmResponse:
    op = world.operations.get(operationId)
    if op is None or op.internal or op.subscription.lower() != subscriptionId.lower():
        raise NotFound(f"The operation '{operationId}' was not found.", code="OperationNotFound")
    return operation_status(world, req, op)


__all__ = ["BadRequest"]
