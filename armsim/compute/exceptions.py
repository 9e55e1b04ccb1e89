"""Microsoft.Compute errors with the exact wire codes and message templates (azure-compute-api.md §2)."""

from __future__ import annotations

from armsim.errors import BadRequest, ConflictingUserInput, InvalidParameter, OperationNotAllowed


def generalized(operation: str, vm: str) -> OperationNotAllowed:
    return OperationNotAllowed(f"Operation '{operation}' is not allowed on VM '{vm}' since the VM is generalized.")


def requires_generalized(operation: str, vm: str) -> OperationNotAllowed:
    return OperationNotAllowed(f"The operation '{operation}' requires the Virtual Machine '{vm}' to be Generalized.")


def generalize_running(vm: str) -> OperationNotAllowed:
    return OperationNotAllowed(
        f"Operation 'generalize' is not allowed on VM '{vm}' since the VM is running. Please power off "
        "explicitly in case you shut down the VM from inside the guest operating system."
    )


def marked_for_deletion(operation: str, vm: str) -> OperationNotAllowed:
    return OperationNotAllowed(
        f"Operation '{operation}' is not allowed on VM '{vm}' since the VM is marked for deletion. You can "
        "only retry the Delete operation (or wait for an ongoing one to complete)."
    )


def operation_in_progress(operation: str, vm: str) -> OperationNotAllowed:
    return OperationNotAllowed(
        f"Operation '{operation}' is not allowed on VM '{vm}' since another operation is in progress."
    )


def deallocated(operation: str, vm: str) -> OperationNotAllowed:
    """The CRP catalogue's template, with the pointer ARM appends today (seen in 2024 terraform-provider-azurerm
    #28218 and rancher/harvester-cloud #53 logs: ``Operation 'powerOff' is not allowed … deallocated.``)."""
    return OperationNotAllowed(
        f"Operation '{operation}' is not allowed on VM '{vm}' since the VM is either deallocated or marked to be "
        "deallocated. Please refer to https://aka.ms/vmpowerstates  to learn about different VM power states."
    )


def not_running(operation: str, vm: str, state: str) -> OperationNotAllowed:
    return OperationNotAllowed(f"Operation '{operation}' is not allowed on VM '{vm}' since the VM is {state}.")


def disk_attached(disk: str, vm_id: str) -> OperationNotAllowed:
    return OperationNotAllowed(f"Disk {disk} is attached to VM {vm_id}.")


def os_disk_swap_needs_deallocation(vm: str) -> OperationNotAllowed:
    # Azure documents the rule (swap only a stopped-deallocated VM's OS disk); the wording is armsim's own.
    return OperationNotAllowed(f"The OS disk of virtual machine '{vm}' can be swapped only while the virtual "
                               "machine is stopped (deallocated).")


def disk_owned(disk_id: str, vm_id: str) -> ConflictingUserInput:
    return ConflictingUserInput(f"Disk '{disk_id}' cannot be attached as the disk is already owned by VM '{vm_id}'.")


def trusted_launch_image() -> OperationNotAllowed:
    return OperationNotAllowed(
        "Creation of managed images are not supported for virtual machine with TrustedLaunch security type."
    )


def capture_managed() -> OperationNotAllowed:
    return OperationNotAllowed(
        "The Capture action is only supported on a Virtual Machine with blob based disks. Please use the "
        "'Image' resource APIs to create an Image from a managed Virtual Machine."
    )


def not_allowed_param(name: str) -> InvalidParameter:
    return InvalidParameter(f"Parameter '{name}' is not allowed.", target=name)


def missing_param(name: str) -> InvalidParameter:
    return InvalidParameter(f"Required parameter '{name}' is missing (null).", target=name)


def plan_required(vm_id: str) -> BadRequest:
    return BadRequest(
        "Creating a virtual machine from Marketplace image or a custom image sourced from a Marketplace image "
        f"requires Plan information in the request. VM: '{vm_id}'.",
        code="VMMarketplaceInvalidInput",
    )


def plan_not_needed() -> BadRequest:
    return BadRequest(
        "Creating a virtual machine from a non Marketplace image does not need Plan information, please "
        "remove the Plan information in the request.",
        code="VMMarketplaceInvalidInput",
    )


def plan_mismatch() -> BadRequest:
    return BadRequest(
        "The purchase information does not match. Unable to deploy from the Marketplace image.",
        code="VMMarketplaceInvalidInput",
    )


def security_type_mismatch() -> BadRequest:
    return BadRequest("Security type of VM is not compatible with the security type of attached OS Disk.")


def image_not_found(image_id: str, location: str) -> InvalidParameter:
    return InvalidParameter(
        f"The Image '{image_id}' cannot be found in '{location}' region.", target="imageReference"
    )


def image_is_specialized_for_osprofile() -> InvalidParameter:
    return InvalidParameter(
        "Parameter 'osProfile' is not allowed when the image is specialized.", target="osProfile"
    )


def resized_down(name: str, current: int, requested: int) -> BadRequest:
    return BadRequest(
        f"Disk '{name}' of size {current} GB cannot be resized down to {requested} GB.",
        code="OperationNotAllowed",
    )


def identity_not_found(vm: str, identity: str) -> BadRequest:
    """A user-assigned identity that does not exist (seen in Azure/azure-policy#1311 and az CLI reports)."""
    inner = f'{{"error":{{"code":"BadRequest","message":"Resource \'{identity}\' was not found."}}}}'
    return BadRequest(f"Identity operation for resource '{vm}' failed with error 'Failed to perform resource identity "
                      f"operation. Status: 'BadRequest'. Response: '{inner}'.'.", code="FailedIdentityOperation")


# --- asynchronous failures: the ``error`` an operation ends with (not raised: set as the operation's outcome) ---


def os_provisioning_timed_out(vm: str, *, image_hint: bool) -> dict[str, str]:
    """``OSProvisioningTimedOut`` (CRP catalogue): with ``image_hint`` the variant Azure shows for an image that
    was not prepared (generalized); without it the plain one, e.g. when the guest could not report to its host."""
    message = (f"OS Provisioning for VM '{vm}' did not finish in the allotted time. The VM may still finish "
               "provisioning successfully. Please check provisioning state later.")
    if image_hint:
        message += " Also, make sure the image has been properly prepared (generalized)."
    return {"code": "OSProvisioningTimedOut", "message": message}


def allocation_failed() -> dict[str, str]:
    return {"code": "AllocationFailed", "message": (
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more "
        "about improving likelihood of allocation success at http://aka.ms/allocation-guidance")}
