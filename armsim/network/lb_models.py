"""The load balancer model (``armsim.network.load_balancers`` has its handlers and routes)."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armsim.network.models import NetworkState


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass
class LoadBalancer:
    id: str
    name: str
    resource_group: str
    location: str
    sku: str = "Basic"
    backend_pools: list[str] = field(default_factory=list)
    frontends: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    etag: str = field(default_factory=_etag)
    resource_guid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_dict(self, net: NetworkState) -> dict[str, Any]:
        pools = []
        for pool in self.backend_pools:
            pool_id = f"{self.id}/backendAddressPools/{pool}"
            members = [f"{n.id}/ipConfigurations/{c['name']}" for n in net.nics.values() for c in n.ip_configurations
                       if any(str(p.get("id", "")).lower() == pool_id.lower()
                              for p in c.get("properties", {}).get("loadBalancerBackendAddressPools") or [])]
            props: dict[str, Any] = {"provisioningState": "Succeeded"}
            if members:
                props["backendIPConfigurations"] = [{"id": m} for m in members]
            pools.append({"id": pool_id, "name": pool, "etag": self.etag,
                          "type": "Microsoft.Network/loadBalancers/backendAddressPools", "properties": props})
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "type": "Microsoft.Network/loadBalancers", "location": self.location,
            "etag": self.etag, "sku": {"name": self.sku, "tier": "Regional"},
            "properties": {"provisioningState": self.provisioning_state, "resourceGuid": self.resource_guid,
                           "frontendIPConfigurations": copy.deepcopy(self.frontends),
                           "backendAddressPools": pools, "loadBalancingRules": [], "probes": [],
                           "inboundNatRules": [], "inboundNatPools": []}}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out
