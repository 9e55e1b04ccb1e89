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


def not_running(operation: str, vm: str, state: str) -> OperationNotAllowed:
    return OperationNotAllowed(f"Operation '{operation}' is not allowed on VM '{vm}' since the VM is {state}.")


def disk_attached(disk: str, vm_id: str) -> OperationNotAllowed:
    return OperationNotAllowed(f"Disk {disk} is attached to VM {vm_id}.")


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
