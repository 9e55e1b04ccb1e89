"""Storage accounts, per subscription; names are unique across the whole world (as in Azure, a name is a host).

Also the rule boot diagnostics applies to a VM's account (``boot_diagnostics_failure``): compute asks it when a VM
is created, updated or started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from armsim.state import Collections
from armsim.storage import exceptions as sx

if TYPE_CHECKING:
    from armsim.state import Subscription, World

NAME = re.compile(r"^[a-z0-9]{3,24}$")
SKUS = ("Standard_LRS", "Standard_GRS", "Standard_RAGRS", "Standard_ZRS", "Standard_GZRS", "Standard_RAGZRS",
        "Premium_LRS", "Premium_ZRS")
KINDS = ("StorageV2", "Storage", "BlobStorage", "BlockBlobStorage", "FileStorage")
BLOB_SUFFIX = ".blob.core.windows.net"


@dataclass
class StorageAccount:
    id: str
    name: str
    resource_group: str
    location: str
    sku: str
    kind: str
    tags: dict[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    created: str = ""

    @property
    def tier(self) -> str:
        return self.sku.split("_", 1)[0]

    @property
    def blob_endpoint(self) -> str:
        return f"https://{self.name}{BLOB_SUFFIX}/"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "type": "Microsoft.Storage/storageAccounts", "location": self.location,
            "sku": {"name": self.sku, "tier": self.tier}, "kind": self.kind,
            "properties": {"provisioningState": self.provisioning_state, "creationTime": self.created,
                           "primaryLocation": self.location, "statusOfPrimary": "available",
                           "primaryEndpoints": {"blob": self.blob_endpoint,
                                                "queue": f"https://{self.name}.queue.core.windows.net/",
                                                "table": f"https://{self.name}.table.core.windows.net/",
                                                "file": f"https://{self.name}.file.core.windows.net/"}},
        }
        if self.tags:
            out["tags"] = self.tags
        return out


class StorageState(Collections):
    MODELS: ClassVar[dict[str, type]] = {"accounts": StorageAccount}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.accounts: dict[str, StorageAccount] = {}

    def rid(self, rg: str, name: str) -> str:
        return f"/subscriptions/{self.sub.id}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"

    def named(self, name: str) -> StorageAccount | None:
        """This subscription's account of that name (names are unique, so at most one)."""
        return next((a for a in self.accounts.values() if a.name == name.lower()), None)

    def get(self, rg: str, name: str) -> StorageAccount:
        self.sub.rg(rg)
        account = self.accounts.get(self.rid(rg, name).lower())
        if account is None:
            raise sx.account_not_found(rg, name)
        return account

    def items_in(self, rg: str | None) -> list[StorageAccount]:
        if rg is not None:
            self.sub.rg(rg)
        prefix = f"/subscriptions/{self.sub.id}/resourcegroups/{rg}/".lower() if rg else ""
        return sorted((a for k, a in self.accounts.items() if k.startswith(prefix)), key=lambda a: a.id.lower())

    def put(self, rg: str, name: str, body: Any, now: str) -> tuple[StorageAccount, bool]:
        """Create (or update the SKU and tags of) an account; every rule is checked before anything changes."""
        group = self.sub.rg(rg)
        if not NAME.match(name):
            raise sx.account_name_invalid(name)
        body = body if isinstance(body, dict) else {}
        rid = self.rid(rg, name)
        existing = self.accounts.get(rid.lower())
        if existing is None and taken(self.sub.world, name):
            raise sx.account_taken(name)
        sku = (body.get("sku") or {}).get("name") if isinstance(body.get("sku"), dict) else None
        kind = body.get("kind")
        location = body.get("location")
        if existing is None:
            if sku not in SKUS:
                raise sx.bad_value("sku.name", sku, SKUS)
            if kind not in KINDS:
                raise sx.bad_value("kind", kind, KINDS)
            if not isinstance(location, str) or not location:
                raise sx.bad_value("location", location, (group.location,))
            account = StorageAccount(id=rid, name=name, resource_group=group.name,
                                     location=location.replace(" ", "").lower(), sku=str(sku), kind=str(kind),
                                     tags=dict(body.get("tags") or {}), provisioning_state="Creating", created=now)
            self.accounts[rid.lower()] = account
            return account, True
        if sku is not None:
            if sku not in SKUS:
                raise sx.bad_value("sku.name", sku, SKUS)
            existing.sku = str(sku)
        if "tags" in body:
            existing.tags = dict(body.get("tags") or {})
        return existing, False


def taken(world: World, name: str) -> StorageAccount | None:
    """The account of that name in any subscription of the world."""
    for sub in world.subscriptions.values():
        found = sub.storage.named(name)
        if found is not None:
            return found
    return None


def account_name(storage_uri: str) -> str | None:
    """The account a ``bootDiagnostics.storageUri`` names (``https://NAME.blob.core.windows.net/``)."""
    host = (urlsplit(storage_uri).hostname or "").lower()
    return host.split(".", 1)[0] if host.endswith(BLOB_SUFFIX) else (host or None)


def boot_diagnostics_failure(sub: Subscription, vm_name: str, location: str,
                             properties: dict[str, Any]) -> dict[str, Any] | None:
    """The error a VM write or start ends with because of its boot-diagnostics account, or None. Managed boot
    diagnostics (no storageUri) and disabled boot diagnostics never fail."""
    bd = (properties.get("diagnosticsProfile") or {}).get("bootDiagnostics") or {}
    uri = bd.get("storageUri")
    if not bd.get("enabled") or not isinstance(uri, str) or not uri:
        return None
    name = account_name(uri) or uri
    account = sub.storage.named(name)  # an account of another subscription does not count
    if account is None:
        return sx.boot_storage_missing(name)
    if account.kind == "BlobStorage":
        return sx.boot_storage_blob_kind(name)
    if account.sku not in sx.BOOT_DIAGNOSTICS_SKUS:
        return sx.boot_storage_type(name, account.sku)
    if account.location != location.replace(" ", "").lower():
        return sx.boot_storage_location(name, vm_name)
    return None


def managed_blob_base(location: str, vm_id: str) -> str:
    """Where managed boot diagnostics keeps a VM's blobs: a platform storage host of the VM's region."""
    import hashlib

    region = location.replace(" ", "").lower()
    host = hashlib.sha256(region.encode()).hexdigest()[:12]
    return f"https://md-{host}.blob.storage.azure.net/bootdiag-{vm_id}"
