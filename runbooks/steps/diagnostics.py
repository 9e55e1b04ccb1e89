"""Boot diagnostics of the VM: where Azure writes its console screenshot and serial log.

``use-managed-boot-diagnostics`` (a PUT of the VM's model) switches the VM to managed boot diagnostics (enabled,
no storage account of its own), or, when the operator names one, to an existing Standard general-purpose account
of the VM's region. It fixes a VM that Azure will not start because its boot-diagnostics account is gone or
unsupported, and hardens a VM whose boot diagnostics is disabled (its next guest crash leaves a screenshot and a
serial log).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field

from runbooks.boot_diagnostics import account_named, setting, unusable_because
from runbooks.changes import Action, Change, Expect, NoChange, Outcome, StepContext
from runbooks.errors import StepRefused
from runbooks.observe import Observation, storage_account_name
from runbooks.steps.power import existing_vm, vm_call
from runbooks.steps.registry import StepParams, step

ENABLED = "properties.diagnosticsProfile.bootDiagnostics.enabled"
STORAGE_URI = "properties.diagnosticsProfile.bootDiagnostics.storageUri"


class BootDiagnosticsParams(StepParams):
    storage_uri: str | None = Field(None, pattern=r"^https://[a-z0-9]{3,24}\.blob\.core\.windows\.net/?$",
                                    description="an existing Standard storage account of the VM's region, by its "
                                    "blob endpoint (https://NAME.blob.core.windows.net/); none: managed boot "
                                    "diagnostics")


def _describe(enabled: Any, uri: Any) -> str:
    if not enabled:
        return "disabled"
    return f"on account {storage_account_name(uri)}" if uri else "managed"


def _target_uri(state: Observation, params: BootDiagnosticsParams) -> str | None:
    """The storageUri to set: None (managed), or the named account's blob endpoint once it is known to fit."""
    if params.storage_uri is None:
        return None
    account = account_named(state, params.storage_uri)
    name = storage_account_name(params.storage_uri)
    if account is None:
        raise StepRefused(f"{state.ref}: storage account {name} does not exist in subscription {state.subscription}; "
                          "name an existing Standard account of the VM's region, or leave storage_uri unset for "
                          "managed boot diagnostics")
    why = unusable_because(account, state.location)
    if why:
        raise StepRefused(f"{state.ref}: boot diagnostics cannot use storage account {name}: {'; '.join(why)}")
    return f"https://{name}.blob.core.windows.net/"


_READ_ONLY = ("id", "name", "type", "etag", "resources", "managedBy")
_READ_ONLY_PROPS = ("provisioningState", "instanceView", "vmId", "timeCreated")


def model_with(vm: dict[str, Any], enabled: bool, uri: str | None) -> dict[str, Any]:
    """The VM's model as a PUT body (read-only parts left out) with boot diagnostics set. Without ``storageUri``
    the PUT makes boot diagnostics managed: what ``az vm boot-diagnostics enable`` without a storage account does
    (it PUTs the model back, and the VM then shows ``storageUri: null``: MicrosoftDocs/azure-docs #106290). A PATCH
    keeps a value it leaves out, an empty one did not clear it (Azure/azure-rest-api-specs #2994), and whether a
    null does is not documented, so the step does not rely on it."""
    body = {k: copy.deepcopy(v) for k, v in vm.items() if k not in _READ_ONLY}
    props = {k: v for k, v in (body.get("properties") or {}).items() if k not in _READ_ONLY_PROPS}
    bd: dict[str, Any] = {"enabled": enabled}
    if uri:
        bd["storageUri"] = uri
    props["diagnosticsProfile"] = {**(props.get("diagnosticsProfile") or {}), "bootDiagnostics": bd}
    body["properties"] = props
    if isinstance(body.get("identity"), dict):
        body["identity"] = {k: v for k, v in body["identity"].items() if k not in ("principalId", "tenantId")}
    return body


def _put(state: Observation, enabled: bool, uri: str | None, summary: str, goal: tuple[Expect, ...]) -> Change:
    if state.vm is None:
        raise StepRefused(f"{state.ref}: the VM does not exist")
    call = vm_call(state, "begin_create_or_update", f"set boot diagnostics ({_describe(enabled, uri)}) of",
                   parameters=model_with(state.vm, enabled, uri))
    return Change(summary, waves=((Action(call, goal),),))


def _undo(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    if now.vm is None:
        return "the VM no longer exists"
    old = setting(before.props)
    enabled, uri = bool(old.get("enabled")), old.get("storageUri") or None
    if enabled and uri and "boot-diagnostics" in now.gathered:
        account = account_named(now, str(uri))
        why = ["it does not exist"] if account is None else unusable_because(account, now.location)
        if why:  # Azure fails any write (and start) of a VM that names it: that is what the run fixed
            cur = setting(now.props)
            return (f"its boot diagnostics was on account {storage_account_name(uri)}, which boot diagnostics cannot "
                    f"use ({'; '.join(why)}): Azure refuses to put it back, so it stays "
                    f"{_describe(cur.get('enabled'), cur.get('storageUri'))}")
    goal = (Expect(now.vm_id, ENABLED, enabled), Expect(now.vm_id, STORAGE_URI, uri))
    view = now.view(now.vm_id)
    if all(e.holds(view) for e in goal):
        return NoChange(f"boot diagnostics of VM {now.ref.name} is {_describe(enabled, uri)}, as before the run",
                        goal=goal)
    return _put(now, enabled, uri, f"put boot diagnostics of VM {now.ref.name} back as it was "
                  f"({_describe(enabled, uri)})", goal)


@step("use-managed-boot-diagnostics", "switch the VM's boot diagnostics to managed storage (or to a named Standard "
      "account of its region)", params=BootDiagnosticsParams, reads=("boot-diagnostics",), undo=_undo)
def use_managed_boot_diagnostics(state: Observation, params: BootDiagnosticsParams, ctx: StepContext) -> Outcome:
    """PUT the VM's model back with ``diagnosticsProfile.bootDiagnostics`` enabled on the target account (none:
    managed). A VM that is running keeps running; the setting applies to its next boot."""
    view = existing_vm(state, "update")
    uri = _target_uri(state, params)
    goal = (Expect(state.vm_id, ENABLED, True), Expect(state.vm_id, STORAGE_URI, uri))
    current = setting(view.get("properties") or {})
    if all(e.holds(view) for e in goal):
        return NoChange(f"boot diagnostics of VM {state.ref.name} is {_describe(True, uri)}", goal=goal)
    was = _describe(current.get("enabled"), current.get("storageUri"))
    return _put(state, True, uri, f"set boot diagnostics of VM {state.ref.name} to {_describe(True, uri)} "
                  f"(it is {was})", goal)
