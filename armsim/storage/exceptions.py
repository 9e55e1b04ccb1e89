"""Microsoft.Storage errors, and the compute errors a boot-diagnostics storage account causes.

Where each wording comes from:

* ``StorageAccountNotFound``: the CRP error catalogue (azure-docs ``virtual-machines/windows/error-messages``:
  "Storage account {0} not found. Ensure storage account is not deleted and belongs to the same Azure location
  as the VM."), with the quoted name as a real failure printed it (a PowerShell ``New-AzVM`` log: "Storage account
  'jlabstorageaccount' not found. …", ErrorCode StorageAccountNotFound).
* ``StorageAccountTypeNotSupported``: a real failed deployment quoted in Azure/azure-quickstart-templates #673
  ("Storage account testupgradegs is of Premium_LRS type. Boot Diagnostics supports Standard_GRS,Standard_LRS,
  Standard_RAGRS storage account types.") and the catalogue template quoted in MicrosoftDocs/azure-docs #5998; a
  Blob storage account: MicrosoftDocs/azure-docs #9214 ("Boot diagnostics uses X which is a Blob storage account.
  Please retry with General purpose storage account."). Both surfaced as a long-running operation that ended
  ``Failed`` (New-AzureRmVM: "Long running operation failed with status 'Failed'"), so armsim fails the operation.
* ``StorageAccountLocationMismatch``: Azure/azure-powershell #5189 (a failed New-AzureRmVM, async as well).
* ``AccountNameInvalid`` / ``StorageAccountAlreadyTaken``: wording from memory, not verified.
"""

from __future__ import annotations

from typing import Any

from armsim.errors import ArmError, BadRequest, Conflict, NotFound

# the SKUs boot diagnostics accepts, as the StorageAccountTypeNotSupported message lists them
BOOT_DIAGNOSTICS_SKUS = ("Standard_GRS", "Standard_LRS", "Standard_RAGRS")
BOOT_DIAGNOSTICS_CODES = ("StorageAccountNotFound", "StorageAccountTypeNotSupported", "StorageAccountLocationMismatch")


def account_name_invalid(name: str) -> BadRequest:
    return BadRequest(f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
                      "characters in length and use numbers and lower-case letters only.", code="AccountNameInvalid")


def account_taken(name: str) -> ArmError:
    return Conflict(f"The storage account named {name} is already taken.", code="StorageAccountAlreadyTaken")


def account_not_found(rg: str, name: str) -> NotFound:
    return NotFound(f"The Resource 'Microsoft.Storage/storageAccounts/{name}' under resource group '{rg}' was not "
                    "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                    code="ResourceNotFound")


def bad_value(field: str, value: Any, allowed: tuple[str, ...]) -> BadRequest:
    # wording armsim's own (Azure's storage RP answers a bad SKU/kind with a 400; its text is not verified)
    return BadRequest(f"The value '{value}' is not valid for {field}. Allowed values: {', '.join(allowed)}.",
                      code="InvalidRequestContent" if value is None else "InvalidValuesForRequestParameters")


def boot_storage_missing(name: str) -> dict[str, Any]:
    return {"code": "StorageAccountNotFound",
            "message": f"Storage account '{name}' not found. Ensure storage account is not deleted and belongs to "
                       "the same Azure location as the VM."}


def boot_storage_type(name: str, sku: str) -> dict[str, Any]:
    return {"code": "StorageAccountTypeNotSupported",
            "message": f"Storage account {name} is of {sku} type. Boot Diagnostics supports "
                       f"{','.join(BOOT_DIAGNOSTICS_SKUS)} storage account types."}


def boot_storage_blob_kind(name: str) -> dict[str, Any]:
    return {"code": "StorageAccountTypeNotSupported",
            "message": f"Boot diagnostics uses {name} which is a Blob storage account. Please retry with General "
                       "purpose storage account."}


def boot_storage_location(name: str, vm: str) -> dict[str, Any]:
    return {"code": "StorageAccountLocationMismatch",
            "message": f"StorageAccount '{name}' associated with VM '{vm}' for boot diagnostics encountered an "
                       "error. Please look at the error code for more information about the error."}


def boot_diagnostics_disabled(vm: str) -> ArmError:
    # wording from memory, not verified (Get-AzVMBootDiagnosticsData says "no diagnostic profile enabled")
    return Conflict(f"Boot diagnostics is not enabled for virtual machine '{vm}'.", code="OperationNotAllowed")
