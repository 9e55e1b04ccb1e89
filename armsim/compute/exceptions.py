"""Microsoft.Compute errors with the exact wire codes and message templates (azure-compute-api.md §2)."""

from __future__ import annotations

from armsim.errors import BadRequest, Conflict, ConflictingUserInput, InvalidParameter, NotFound, OperationNotAllowed


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


def disk_sku_change_attached(disk: str, vm_id: str) -> OperationNotAllowed:
    """A disk's SKU (disk type) changed while its VM holds an allocation. Azure documents the rule ("Stop and
    deallocate the VM before changing the storage type", azure-compute-docs disks-convert-types); the code is the
    one Azure uses for the sibling refusal (resizing an attached disk: ``OperationNotAllowed`` "Cannot resize disk
    <disk> while it is attached to running VM <vm id>. … Please stop your VM and retry the operation."); this
    wording is armsim's own, modelled on that one."""
    return OperationNotAllowed(f"Cannot change the SKU of disk {disk} while it is attached to running VM {vm_id}. "
                               "Changing the disk type of an Azure Virtual Machine's disk requires the virtual "
                               "machine to be deallocated. Please stop your VM and retry the operation.")


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


def os_provisioning_timed_out(vm: str, *, agent_running: bool) -> dict[str, str]:
    """``OSProvisioningTimedOut`` (CRP catalogue). Plain: the guest never reported (e.g. it could not reach its host).
    ``agent_running``: the variant Azure shows when the VM agent ran but provisioning never did, i.e. a specialized
    OS deployed from an image as if generalized (createOption FromImage). Wording quoted in hashicorp/packer#4221,
    MicrosoftDocs/azure-docs#38609 and cloudbase/cloudbase-init#161."""
    message = f"OS Provisioning for VM '{vm}' did not finish in the allotted time. "
    if agent_running:
        message += ("However, the VM guest agent was detected running. This suggests the guest OS has not been "
                    "properly prepared to be used as a VM image (with CreateOption=FromImage). To resolve this issue, "
                    "either use the VHD as is with CreateOption=Attach or prepare it properly for use as an image:"
                    "\r\n * Instructions for Windows: "
                    "https://azure.microsoft.com/documentation/articles/virtual-machines-windows-upload-image/ "
                    "\r\n * Instructions for Linux: "
                    "https://azure.microsoft.com/documentation/articles/virtual-machines-linux-capture-image/ ")
    else:
        message += "The VM may still finish provisioning successfully. Please check provisioning state later."
    return {"code": "OSProvisioningTimedOut", "message": message}


def os_provisioning_timed_out_unprepared(vm: str) -> dict[str, str]:
    """The catalogue's third ``OSProvisioningTimedOut`` variant (azure-docs' VM error-messages table): the guest
    never reported and the image may not have been generalized (a setup stuck before the agent starts). armsim's
    guest does not reach that state by itself; scenarios inject it as the platform's verdict."""
    return {"code": "OSProvisioningTimedOut", "message": (
        f"OS Provisioning for VM '{vm}' did not finish in the allotted time. The VM may still finish provisioning "
        "successfully. Please check provisioning state later. Also, make sure the image has been properly prepared "
        "(generalized).")}


def allocation_failed() -> dict[str, str]:
    return {"code": "AllocationFailed", "message": (
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more "
        "about improving likelihood of allocation success at http://aka.ms/allocation-guidance")}


def allocation_failed_in_availability_set() -> dict[str, str]:
    """``AllocationFailed`` for a VM whose allocation was scoped to its availability set's cluster (a member
    started or resized while another member holds the set's cluster). Wording as Azure returns it, quoted in
    Azure/karpenter-provider-azure's cloud-error tests and in azure-docs' restore-point troubleshooting article;
    the docs' allocation-failure article explains the cause ("pinned to a cluster")."""
    return {"code": "AllocationFailed", "message": (
        "Allocation failed. If you are trying to add a new VM to an Availability Set or update/resize an existing VM "
        "in an Availability Set, please note that such Availability Set allocation is scoped to a single cluster, and "
        "it is possible that the cluster is out of capacity. Please read more about improving likelihood of "
        "allocation success at http://aka.ms/allocation-guidance.")}


# --- capacity, sizes and quota (armsim/compute/capacity.py) ---


class SkuNotAvailable(Conflict):
    """A size restricted for the subscription in a location or zone (seen in MicrosoftDocs/azure-docs #44340,
    microsoft/PartsUnlimitedMRP #133: 409 ``SkuNotAvailable``)."""

    code = "SkuNotAvailable"

    def __init__(self, resource_id: str, location: str, zones: list[str], subscription: str) -> None:
        super().__init__(
            f"The requested size for resource '{resource_id}' is currently not available in location '{location}' "
            f"zones '{','.join(zones)}' for subscription '{subscription}'. Please try another size or deploy to a "
            "different location or zones. See https://aka.ms/azureskunotavailable for details.")


class InvalidVmSize(InvalidParameter):
    """An unknown size (terraform-examples #62, ansible azure #1243: 400 ``InvalidParameter``)."""

    def __init__(self, requested: str, valid: list[str]) -> None:
        super().__init__(f"The value {requested} provided for the VM size is not valid. The valid sizes in the current "
                         f"region are: {','.join(valid)}. Find out more on the available VM sizes in each region at "
                         "https://aka.ms/azure-regions.", target="vmSize")


class VmSizeNotInCluster(OperationNotAllowed):
    """Resizing (or starting) an allocated VM to a size its hardware cluster does not host (service-fabric-issues
    #472: 409 ``OperationNotAllowed``, target ``vmSize``)."""

    def __init__(self, operation: str, vm: str, requested: str, available: list[str]) -> None:
        super().__init__(f"Unable to {operation} the VM '{vm}' because the requested size {requested} is not available "
                         f"in the current hardware cluster. The available sizes are: {','.join(available)}.\r\n"
                         "Read more on VM resizing strategy at https://aka.ms/azure-resizevm.", target="vmSize")


class VmSizeNotInAvailabilitySet(InvalidParameter):
    """Creating a VM in an availability set pinned to a cluster that does not host its size (AutomatedLab #380,
    rancher #14555: 400 ``InvalidParameter``)."""

    def __init__(self, vm: str, avset: str, requested: str, available: list[str]) -> None:
        super().__init__(f"Unable to create the VM '{vm}' in availability set '{avset}' because the requested size "
                         f"{requested} is not available in the current hardware cluster. The available sizes are: "
                         f"{','.join(available)}.\r\nRead more on VM resizing strategy at https://aka.ms/azure-resizevm.",
                         target="vmSize")


class AvailabilitySetNotFound(NotFound):
    code = "NotFound"

    def __init__(self, avset_id: str) -> None:
        super().__init__(f"The Availability Set '{avset_id}' cannot be found.")


class QuotaExceeded(OperationNotAllowed):
    """CRP's vCPU quota refusal (nforgeio/neonKUBE #1671, Azure/karpenter-provider-azure #192: 409
    ``OperationNotAllowed``). ``legacy`` gives the older ``QuotaExceeded`` wording (fabragaMS/ADPE2E #4)."""

    def __init__(self, *, quota: str, location: str, limit: int, usage: int, required: int, subscription: str,
                 resource: str, legacy: bool = False) -> None:
        if legacy:
            super().__init__(f"Operation results in exceeding quota limits of Core. Maximum allowed: {limit}, "
                             f"Current in use: {usage}, Additional requested: {required}.", code="QuotaExceeded")
            return
        need = usage + required
        params = (f"%7B%22subscriptionId%22:%22{subscription}%22,%22command%22:%22openQuotaApprovalBlade%22,"
                  f"%22quotas%22:[%7B%22location%22:%22{location}%22,%22providerId%22:%22Microsoft.Compute%22,"
                  f"%22resourceName%22:%22{resource}%22,%22quotaRequest%22:%7B%22properties%22:%7B%22limit%22:"
                  f"{need},%22unit%22:%22Count%22,%22name%22:%7B%22value%22:%22{resource}%22%7D%7D%7D%7D]%7D")
        super().__init__(
            f"Operation could not be completed as it results in exceeding approved {quota} quota. Additional details "
            f"- Deployment Model: Resource Manager, Location: {location}, Current Limit: {limit}, Current Usage: "
            f"{usage}, Additional Required: {required}, (Minimum) New Limit Required: {need}. Submit a request for "
            "Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView/"
            f"Parameters/{params} by specifying parameters listed in the \u2018Details\u2019 section for deployment "
            "to succeed. Please read more about quota limits at "
            "https://docs.microsoft.com/en-us/azure/azure-supportability/per-vm-quota-requests")


ALLOCATION_CODES = ("AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest",
                    "OverconstrainedZonalAllocationRequest")


def zonal_allocation_failed() -> dict[str, str]:
    """openshift/release #5182 (``ZonalAllocationFailed``)."""
    return {"code": "ZonalAllocationFailed", "message": (
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this zone. Read more about "
        "improving likelihood of allocation success at http://aka.ms/allocation-guidance")}


def overconstrained(constraints: list[str], *, zonal: bool) -> dict[str, str]:
    """PerfKitBenchmarker #1863, jenkins-infra/helpdesk #3584 (constraints listed one per line)."""
    listed = "".join(f"  - {c}\n" for c in constraints)
    return {"code": "OverconstrainedZonalAllocationRequest" if zonal else "OverconstrainedAllocationRequest",
            "message": ("Allocation failed. VM(s) with the following constraints cannot be allocated, because the "
                        "condition is too restrictive. Please remove some constraints and try again. Constraints "
                        f"applied are:\n{listed}")}
