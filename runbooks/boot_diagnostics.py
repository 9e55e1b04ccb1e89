"""Boot diagnostics of a VM and the storage account it writes to: whether that account can take it.

Boot diagnostics is *managed* (enabled, no ``storageUri``: Azure keeps the blobs) or *custom* (a ``storageUri``
naming a storage account of the subscription). Azure refuses to create, update or start a VM whose custom account
is gone (``StorageAccountNotFound``), is not a Standard general-purpose account of a supported redundancy
(``StorageAccountTypeNotSupported``: the message lists Standard_GRS, Standard_LRS, Standard_RAGRS), or is in another
region (``StorageAccountLocationMismatch``). The accounts are read by the ``boot-diagnostics`` fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from runbooks.observe import Observation, dotted, storage_account_name

SUPPORTED_SKUS = ("Standard_GRS", "Standard_LRS", "Standard_RAGRS")
GENERAL_PURPOSE = ("StorageV2", "Storage")

State = Literal["disabled", "managed", "missing", "unusable", "usable"]


@dataclass(frozen=True)
class Assessment:
    state: State
    detail: str
    uri: str | None = None
    account: dict[str, Any] | None = None

    @property
    def premium(self) -> bool:
        return self.account is not None and str(self.account.get("tier") or "").lower() == "premium"


def setting(vm_props: dict[str, Any]) -> dict[str, Any]:
    found = dotted(vm_props, "diagnosticsProfile.bootDiagnostics")
    return found if isinstance(found, dict) else {}


def account_named(obs: Observation, uri: str) -> dict[str, Any] | None:
    name = storage_account_name(uri)
    return next((a for a in obs.storage_accounts if a.get("name") == name), None) if name else None


def unusable_because(account: dict[str, Any], location: str) -> list[str]:
    """Why boot diagnostics cannot use this account for a VM in ``location`` (empty: it can)."""
    why = []
    if str(account.get("kind")) not in GENERAL_PURPOSE:
        why.append(f"it is a {account.get('kind')} account, not a general-purpose one")
    if str(account.get("sku")) not in SUPPORTED_SKUS:
        why.append(f"it is {account.get('sku')}; boot diagnostics takes {', '.join(SUPPORTED_SKUS)}")
    if location and str(account.get("location")) != location.replace(" ", "").lower():
        why.append(f"it is in {account.get('location')}, the VM in {location}")
    return why


def assess(obs: Observation) -> Assessment:
    bd = setting(obs.props)
    if not bd.get("enabled"):
        return Assessment("disabled", "boot diagnostics is disabled")
    uri = bd.get("storageUri")
    if not uri:
        return Assessment("managed", "managed boot diagnostics (no storage account of its own)")
    account = account_named(obs, str(uri))
    name = storage_account_name(uri)
    if account is None:
        return Assessment("missing", f"its boot-diagnostics account {name} ({uri}) does not exist in the "
                          "subscription", str(uri))
    why = unusable_because(account, obs.location)
    desc = f"{account.get('sku')} {account.get('kind')} in {account.get('location')}"
    if why:
        return Assessment("unusable", f"its boot-diagnostics account {name} ({desc}) cannot be used: {'; '.join(why)}",
                          str(uri), account)
    return Assessment("usable", f"boot diagnostics on account {name} ({desc})", str(uri), account)
