"""Microsoft.Compute routes and the RBAC action each one needs."""

from __future__ import annotations

from armsim import schema as S
from armsim.compute import capacity_responses as c
from armsim.compute import responses as r
from armsim.compute import vmimages
from armsim.routing import Router

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
NS = "/providers/Microsoft.Compute"
VM = RG + NS + "/virtualMachines/{vmName}"
A = "Microsoft.Compute/"


def register(router: Router) -> None:
    add = router.add
    add("PUT", VM, r.create_or_update, A + "virtualMachines/write", schema=S.VIRTUAL_MACHINE)
    add("PATCH", VM, r.update, A + "virtualMachines/write", schema=S.VIRTUAL_MACHINE)
    add("GET", VM, r.get, A + "virtualMachines/read")
    add("DELETE", VM, r.delete, A + "virtualMachines/delete")
    add("GET", VM + "/instanceView", r.instance_view, A + "virtualMachines/instanceView/read")
    add("GET", RG + NS + "/virtualMachines", r.list_vms, A + "virtualMachines/read")
    add("GET", SUB + NS + "/virtualMachines", r.list_all, A + "virtualMachines/read")
    for action, handler in (("start", r.start), ("powerOff", r.power_off), ("deallocate", r.deallocate),
                            ("restart", r.restart), ("redeploy", r.redeploy), ("generalize", r.generalize),
                            ("capture", r.capture)):
        add("POST", f"{VM}/{action}", handler, f"{A}virtualMachines/{action}/action")
    add("POST", VM + "/retrieveBootDiagnosticsData", r.retrieve_boot_diagnostics_data,
        A + "virtualMachines/retrieveBootDiagnosticsData/action")
    ext = VM + "/extensions/{vmExtensionName}"
    add("PUT", ext, r.create_or_update_extension, A + "virtualMachines/extensions/write", schema=S.EXTENSION)
    add("GET", ext, r.get_extension, A + "virtualMachines/extensions/read")
    add("DELETE", ext, r.delete_extension, A + "virtualMachines/extensions/delete")
    add("GET", VM + "/extensions", r.list_extensions, A + "virtualMachines/extensions/read")
    for rtype, put, patch, get, lst, delete in (
        ("disks", r.create_or_update_disk, r.update_disk, r.get_disk, r.list_disks, r.delete_disk),
        ("snapshots", r.create_or_update_snapshot, r.update_snapshot, r.get_snapshot, r.list_snapshots,
         r.delete_snapshot),
    ):
        one = RG + NS + f"/{rtype}/{{name}}"
        add("PUT", one, put, f"{A}{rtype}/write", schema=S.DISK)
        add("PATCH", one, patch, f"{A}{rtype}/write", schema=S.DISK)
        add("GET", one, get, f"{A}{rtype}/read")
        add("DELETE", one, delete, f"{A}{rtype}/delete")
        add("GET", RG + NS + f"/{rtype}", lst, f"{A}{rtype}/read")
        add("GET", SUB + NS + f"/{rtype}", lst, f"{A}{rtype}/read")
    image = RG + NS + "/images/{imageName}"
    add("PUT", image, r.create_or_update_image, A + "images/write", schema=S.IMAGE)
    add("GET", image, r.get_image, A + "images/read")
    add("DELETE", image, r.delete_image, A + "images/delete")
    add("GET", RG + NS + "/images", r.list_images, A + "images/read")
    add("GET", SUB + NS + "/images", r.list_images, A + "images/read")
    ops = SUB + NS + "/locations/{location}"
    add("GET", ops + "/operations/{operationId}", r.get_operation, A + "locations/operations/read", lro_poll=True)
    add("GET", ops + "/DiskOperations/{operationId}", r.get_operation, A + "locations/diskOperations/read",
        lro_poll=True)
    # capacity, sizes and quota (armsim.compute.capacity)
    add("GET", SUB + NS + "/skus", c.list_skus, A + "skus/read")
    add("GET", ops + "/vmSizes", c.list_location_sizes, A + "locations/vmSizes/read")
    add("GET", ops + "/usages", c.list_usages, A + "locations/usages/read")
    add("GET", VM + "/vmSizes", c.vm_sizes, A + "virtualMachines/vmSizes/read")
    for rtype, put, get, delete, lst in (
        ("availabilitySets", c.put_availability_set, c.get_availability_set, c.delete_availability_set,
         c.list_availability_sets),
        ("proximityPlacementGroups", c.put_proximity_group, c.get_proximity_group, c.delete_proximity_group,
         c.list_proximity_groups),
    ):
        one = RG + NS + f"/{rtype}/{{name}}"
        add("PUT", one, put, f"{A}{rtype}/write")
        add("GET", one, get, f"{A}{rtype}/read")
        add("DELETE", one, delete, f"{A}{rtype}/delete")
        add("GET", RG + NS + f"/{rtype}", lst, f"{A}{rtype}/read")
        add("GET", SUB + NS + f"/{rtype}", lst, f"{A}{rtype}/read")
    add("GET", RG + NS + "/availabilitySets/{name}/vmSizes", c.availability_set_sizes,
        A + "availabilitySets/vmSizes/read")
    # marketplace images (armsim.compute.vmimages)
    images = ops + "/publishers/{publisherName}/artifacttypes/vmimage/offers/{offer}/skus/{skus}/versions"
    add("GET", images, vmimages.list_images, A + "locations/publishers/artifacttypes/offers/skus/versions/read")
    add("GET", images + "/{version}", vmimages.get_image,
        A + "locations/publishers/artifacttypes/offers/skus/versions/read")
