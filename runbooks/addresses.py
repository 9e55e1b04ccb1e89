"""Private addresses of NIC ipconfigs as the plan read them (the ``subnets`` fact): who holds which address, how
to name an ipconfig to the operator, and which ipconfig ARM's refusal of a requested address names."""

from __future__ import annotations

import re
from typing import Any

from runbooks.observe import Observation

# Azure's codes for a requested private address another ipconfig holds
PRIVATE_IP_TAKEN = ("PrivateIPAddressIsAllocated", "PrivateIPAddressInUse")
# ARM's message for both starts "IP configuration <the refused ipconfig's id> is using the private IP address …" (quoted
# from real Azure in daniel-rhoades/acs-engine-terraform #10 and F5Networks/terraform-azure-bigip-module #63)
_REFUSED_CONFIG = re.compile(r"IP configuration (/\S+?/ipConfigurations/[^\s/]+) is using", re.IGNORECASE)


def ipconfig_label(config_id: str) -> str:
    """``NIC (ipconfig)`` for an ipconfig id (``…/networkInterfaces/NIC/ipConfigurations/NAME``)."""
    parts = str(config_id).split("/")
    return f"{parts[-3]} ({parts[-1]})" if len(parts) > 3 else str(config_id)


def subnet_unreadable(obs: Observation, subnet_id: str) -> str | None:
    """Why the plan could not read the subnet (ARM's code, e.g. a 403 outside the role's scope); None if it could."""
    subnet = obs.resources.get(subnet_id.lower())
    return str(subnet["unreadable"]) if subnet and subnet.get("unreadable") else None


def subnet_holders(obs: Observation, subnet_id: str) -> dict[str, str] | None:
    """Who holds each private address of a subnet as ``obs`` read it (address → ipconfig id); None: unknown (the
    subnet was not read or could not be, or its ipconfigs came without their addresses)."""
    subnet = obs.resources.get(subnet_id.lower())
    if not subnet or subnet.get("unreadable"):
        return None
    configs = subnet.get("properties", {}).get("ipConfigurations") or []
    held = {str(c["properties"]["privateIPAddress"]): str(c.get("id", ""))
            for c in configs if (c.get("properties") or {}).get("privateIPAddress")}
    return held if held or not configs else None


def holder_label(obs: Observation, subnet_id: str, address: Any) -> str | None:
    """``NIC (ipconfig)`` holding ``address`` in the subnet as ``obs`` read it; None if none (or unknown)."""
    holder = (subnet_holders(obs, subnet_id) or {}).get(str(address)) if address else None
    return ipconfig_label(holder) if holder else None


def refused_ipconfig(message: str, nic_id: str) -> str | None:
    """The name of the ipconfig of NIC ``nic_id`` that ARM's refusal (``PRIVATE_IP_TAKEN``) names; None when the
    message names none of this NIC's (another wording)."""
    found = _REFUSED_CONFIG.search(message)
    if found is None:
        return None
    nic, _, name = found.group(1).rpartition("/ipConfigurations/")
    return name if nic.lower() == nic_id.lower() else None
