"""Microsoft.Network state and rules: virtual networks and subnets, NICs, public IP addresses —
enough for VM NICs: IP allocation, the NIC ↔ VM back-reference, deleteOption cascades."""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.errors import ArmError, BadRequest, InvalidParameter, NotFound, ResourceNotFound
from armsim.network.lb_models import LoadBalancer
from armsim.state import Collections

if TYPE_CHECKING:
    from armsim.state import Subscription


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _loc(location: str) -> str:
    return location.replace(" ", "").lower()


@dataclass
class VirtualNetwork:
    id: str
    name: str
    resource_group: str
    location: str
    address_prefixes: list[str]
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name → {name, addressPrefix, …}
    tags: dict[str, str] = field(default_factory=dict)
    etag: str = field(default_factory=_etag)
    resource_guid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def subnet_dict(self, key: str, ip_configs: list[str]) -> dict[str, Any]:
        s = self.subnets[key]
        props: dict[str, Any] = {k: v for k, v in s.items() if k != "name"}
        props["provisioningState"] = "Succeeded"
        if ip_configs:
            props["ipConfigurations"] = [{"id": i} for i in ip_configs]
        return {"id": f"{self.id}/subnets/{s['name']}", "name": s["name"], "etag": self.etag,
                "type": "Microsoft.Network/virtualNetworks/subnets", "properties": props}


@dataclass
class NetworkInterface:
    id: str
    name: str
    resource_group: str
    location: str
    ip_configurations: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    virtual_machine: str | None = None
    mac_address: str | None = None
    provisioning_state: str = "Succeeded"
    etag: str = field(default_factory=_etag)
    resource_guid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_dict(self) -> dict[str, Any]:
        configs = []
        for c in self.ip_configurations:
            props = {**copy.deepcopy(c.get("properties", {})), "provisioningState": "Succeeded"}
            configs.append({"id": f"{self.id}/ipConfigurations/{c['name']}", "name": c["name"], "etag": self.etag,
                            "type": "Microsoft.Network/networkInterfaces/ipConfigurations", "properties": props})
        out_props: dict[str, Any] = {
            **copy.deepcopy(self.extra), "provisioningState": self.provisioning_state,
            "resourceGuid": self.resource_guid, "ipConfigurations": configs,
            "nicType": "Standard", "vnetEncryptionSupported": False,
        }
        out_props.setdefault("enableAcceleratedNetworking", False)
        out_props.setdefault("enableIPForwarding", False)
        if self.virtual_machine:
            out_props["virtualMachine"] = {"id": self.virtual_machine}
            out_props["macAddress"] = self.mac_address
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": "Microsoft.Network/networkInterfaces",
                               "location": self.location, "etag": self.etag, "properties": out_props}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


@dataclass
class PublicIPAddress:
    id: str
    name: str
    resource_group: str
    location: str
    sku: str = "Standard"
    allocation: str = "Static"
    ip_address: str | None = None
    ip_configuration: str | None = None
    zones: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    etag: str = field(default_factory=_etag)
    resource_guid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {**copy.deepcopy(self.extra), "provisioningState": self.provisioning_state,
                                 "resourceGuid": self.resource_guid, "publicIPAllocationMethod": self.allocation,
                                 "publicIPAddressVersion": "IPv4"}
        props.setdefault("idleTimeoutInMinutes", 4)
        if self.ip_address:
            props["ipAddress"] = self.ip_address
        if self.ip_configuration:
            props["ipConfiguration"] = {"id": self.ip_configuration}
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": "Microsoft.Network/publicIPAddresses",
                               "location": self.location, "etag": self.etag,
                               "sku": {"name": self.sku, "tier": "Regional"}, "properties": props}
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.zones:
            out["zones"] = list(self.zones)
        return out


def nic_in_use(nic_id: str, vm_id: str) -> BadRequest:
    return BadRequest(
        f"Network Interface {nic_id} is used by existing resource {vm_id}. In order to delete the network "
        "interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
        code="NicInUse",
    )


def reference_not_found(ref: str, by: str) -> BadRequest:
    return BadRequest(f"Resource {ref} referenced by resource {by} was not found. Please make sure that the "
                      "referenced resource exists, and that both resources are in the same region.",
                      code="InvalidResourceReference")


def unmodelled_reference(sub: Subscription, ref: Any, rtype: str) -> bool:
    """Is ``ref`` the id of a ``rtype`` resource (e.g. ``Microsoft.Network/loadBalancers/backendAddressPools``)
    in a resource group armsim holds? armsim does not model NSGs, ASGs, load balancers, application gateways or
    user-assigned identities, so a reference to one is taken on trust once its resource group exists (its linked access
    check, in armsim.authorization.rbac, is what matters)."""
    if not isinstance(ref, str):
        return False
    namespace, *types = rtype.split("/")
    m = re.fullmatch(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/" + re.escape(namespace)
                     + "".join(f"/{re.escape(t)}/[^/]+" for t in types), "/" + ref.strip().strip("/"), re.I)
    if m is None:
        return False
    owner = sub.world.subscriptions.get(m.group(1).lower())
    return owner is not None and m.group(2).lower() in owner.resource_groups


# references a NIC may hold to resources armsim does not model: (where, resource type)
NIC_REFERENCES = (("networkSecurityGroup", "Microsoft.Network/networkSecurityGroups"),
                  ("applicationSecurityGroups", "Microsoft.Network/applicationSecurityGroups"),
                  ("loadBalancerBackendAddressPools", "Microsoft.Network/loadBalancers/backendAddressPools"),
                  ("loadBalancerInboundNatRules", "Microsoft.Network/loadBalancers/inboundNatRules"),
                  ("applicationGatewayBackendAddressPools",
                   "Microsoft.Network/applicationGateways/backendAddressPools"))


class NetworkState(Collections):
    """All Microsoft.Network resources of one subscription."""

    MODELS = {"vnets": VirtualNetwork, "nics": NetworkInterface, "pips": PublicIPAddress, "lbs": LoadBalancer}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.vnets: dict[str, VirtualNetwork] = {}
        self.nics: dict[str, NetworkInterface] = {}
        self.pips: dict[str, PublicIPAddress] = {}
        self.lbs: dict[str, LoadBalancer] = {}
        self._pip_counter = 0
        # private IPs in use per virtual network: {vnet id (lower): {ip: nic id (lower)}}; rebuilt from the
        # NICs whenever their count changed behind our back (state load, resource-group delete)
        self._ips: dict[str, dict[str, str]] = {}
        self._ips_nics = 0
        # per (vnet id, subnet prefix): an offset below which every address is held (lowered when one is released),
        # so handing out the lowest free address of a subnet stays linear over N NICs
        self._low_free: dict[tuple[str, str], int] = {}

    def _vnet_ips(self, vnet_id: str) -> dict[str, str]:
        if self._ips_nics != len(self.nics):
            self._ips, self._low_free = {}, {}
            for n in self.nics.values():
                self._index_ips(n, add=True)
            self._ips_nics = len(self.nics)
        return self._ips.setdefault(vnet_id.lower(), {})

    def _index_ips(self, nic: NetworkInterface, *, add: bool) -> None:
        for c in nic.ip_configurations:
            props = c.get("properties", {})
            subnet_id = str((props.get("subnet") or {}).get("id", ""))
            address = props.get("privateIPAddress")
            if not address or "/subnets/" not in subnet_id:
                continue
            ips = self._ips.setdefault(subnet_id.rpartition("/subnets/")[0].lower(), {})
            if add:
                ips[address] = nic.id.lower()
            elif ips.get(address) == nic.id.lower():
                del ips[address]
                self._released(subnet_id.rpartition("/subnets/")[0].lower(), address)

    def _released(self, vnet_key: str, address: str) -> None:
        """An address of the VNet is free again: each subnet's low-water mark that lies above it comes down."""
        ip = ipaddress.ip_address(address)
        for (vnet, prefix), low in list(self._low_free.items()):
            net = ipaddress.ip_network(prefix)
            if vnet == vnet_key and ip.version == net.version and ip in net:
                self._low_free[(vnet, prefix)] = min(low, int(ip) - int(net.network_address))

    def rid(self, rg: str, rtype: str, name: str) -> str:
        return f"{self.sub.rg(rg).id}/providers/Microsoft.Network/{rtype}/{name}"

    def get(self, table: str, rg: str, rtype: str, name: str) -> Any:
        item = getattr(self, table).get(self.rid(rg, rtype, name).lower())
        if item is None:
            raise ResourceNotFound(f"Microsoft.Network/{rtype}", name, rg)
        return item

    def items_in(self, table: str, rg: str | None) -> list[Any]:
        items = getattr(self, table)
        if rg is None:
            return list(items.values())
        self.sub.rg(rg)
        prefix = f"/subscriptions/{self.sub.id}/resourcegroups/{rg}/".lower()
        return [v for k, v in items.items() if k.startswith(prefix)]

    # --- virtual networks --------------------------------------------------------------------------
    def put_vnet(self, rg: str, name: str, body: dict[str, Any]) -> tuple[VirtualNetwork, bool]:
        rid = self.rid(rg, "virtualNetworks", name)
        props = body.get("properties") or {}
        prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
        if not prefixes or not all(isinstance(p, str) for p in prefixes):
            raise InvalidParameter("Required parameter 'addressSpace.addressPrefixes' is missing.",
                                   target="addressSpace")
        for p in prefixes:
            _network(p, "addressSpace")
        existing = self.vnets.get(rid.lower())
        location = body.get("location") or (existing.location if existing else None)
        if not location:
            raise InvalidParameter("Required parameter 'location' is missing (null).", target="location")
        vnet = existing or VirtualNetwork(rid, name, self.sub.rg(rg).name, _loc(location), list(prefixes))
        vnet.address_prefixes = list(prefixes)
        vnet.tags = dict(body.get("tags") or {})
        subnets = {}
        for s in props.get("subnets") or []:
            sname = s.get("name")
            prefix = (s.get("properties") or {}).get("addressPrefix")
            if not sname or not prefix:
                raise InvalidParameter("Each subnet needs a name and properties.addressPrefix.", target="subnets")
            _network(prefix, "subnets")
            subnets[sname.lower()] = {"name": sname, **{k: v for k, v in (s.get("properties") or {}).items()
                                                        if k not in ("provisioningState", "ipConfigurations")}}
        if props.get("subnets") is not None or existing is None:
            self._refuse_subnets_in_use(vnet, set(vnet.subnets) - set(subnets))
            vnet.subnets = subnets
        self.vnets[rid.lower()] = vnet
        return vnet, existing is None

    def vnet_dict(self, vnet: VirtualNetwork) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": vnet.id, "name": vnet.name, "type": "Microsoft.Network/virtualNetworks", "location": vnet.location,
            "etag": vnet.etag, "properties": {
                "provisioningState": "Succeeded", "resourceGuid": vnet.resource_guid,
                "addressSpace": {"addressPrefixes": list(vnet.address_prefixes)},
                "subnets": [vnet.subnet_dict(k, self._subnet_users(f"{vnet.id}/subnets/{s['name']}"))
                            for k, s in vnet.subnets.items()]}}
        if vnet.tags:
            out["tags"] = dict(vnet.tags)
        return out

    def _refuse_subnets_in_use(self, vnet: VirtualNetwork, keys: set[str]) -> None:
        for key in keys:
            name = vnet.subnets[key]["name"]
            if self._subnet_users(f"{vnet.id}/subnets/{name}"):
                raise BadRequest(f"Subnet {name} is in use and cannot be deleted.", code="InUseSubnetCannotBeDeleted")

    def delete_vnet(self, vnet: VirtualNetwork) -> None:
        self._refuse_subnets_in_use(vnet, set(vnet.subnets))
        del self.vnets[vnet.id.lower()]

    def subnet(self, subnet_id: str) -> tuple[VirtualNetwork, dict[str, Any]] | None:
        vnet_id, _, sname = subnet_id.rpartition("/subnets/")
        vnet = self.vnets.get(vnet_id.lower())
        if vnet is None or sname.lower() not in vnet.subnets:
            return None
        return vnet, vnet.subnets[sname.lower()]

    def _subnet_users(self, subnet_id: str) -> list[str]:
        return [f"{n.id}/ipConfigurations/{c['name']}" for n in self.nics.values() for c in n.ip_configurations
                if str((c.get("properties", {}).get("subnet") or {}).get("id", "")).lower() == subnet_id.lower()]

    def subnet_configs_expanded(self, subnet_id: str) -> list[dict[str, Any]]:
        """The subnet's ipConfigurations with their properties (``$expand=ipConfigurations``): each NIC ipconfig in
        it as the NIC shows it (name, private address and its allocation method, version, primary)."""
        out = []
        for n in self.nics.values():
            for c in n.to_dict()["properties"]["ipConfigurations"]:
                if str((c["properties"].get("subnet") or {}).get("id", "")).lower() == subnet_id.lower():
                    out.append({"id": c["id"], "name": c["name"], "etag": c["etag"], "properties": {
                        k: v for k, v in c["properties"].items() if k in (
                            "privateIPAddress", "privateIPAllocationMethod", "privateIPAddressVersion", "primary",
                            "provisioningState")}})
        return out

    # --- public IPs ---------------------------------------------------------------------------------
    def put_pip(self, rg: str, name: str, body: dict[str, Any]) -> tuple[PublicIPAddress, bool]:
        rid = self.rid(rg, "publicIPAddresses", name)
        props = body.get("properties") or {}
        existing = self.pips.get(rid.lower())
        if existing is not None:
            existing.tags = dict(body.get("tags") or {})
            return existing, False
        if not body.get("location"):
            raise InvalidParameter("Required parameter 'location' is missing (null).", target="location")
        sku = (body.get("sku") or {}).get("name") or "Standard"
        allocation = props.get("publicIPAllocationMethod") or ("Static" if sku == "Standard" else "Dynamic")
        if sku == "Standard" and allocation != "Static":
            raise BadRequest("Standard sku publicIp /subscriptions/... must have AllocationMethod set to Static.",
                             code="StandardSkuPublicIPAddressesMustBeStatic")
        self._pip_counter += 1
        digest = hashlib.sha256(f"{rid.lower()}:{uuid.uuid4()}".encode()).digest()
        address = f"20.{digest[0]}.{digest[1]}.{max(1, digest[2] % 255)}"
        pip = PublicIPAddress(rid, name, self.sub.rg(rg).name, _loc(body["location"]), sku=sku,
                              allocation=allocation, ip_address=address, zones=list(body.get("zones") or []),
                              extra={k: v for k, v in props.items() if k in ("dnsSettings", "idleTimeoutInMinutes")},
                              tags=dict(body.get("tags") or {}))
        self.pips[rid.lower()] = pip
        return pip, True

    # --- NICs ---------------------------------------------------------------------------------------
    def put_nic(self, rg: str, name: str, body: dict[str, Any]) -> tuple[NetworkInterface, bool]:
        rid = self.rid(rg, "networkInterfaces", name)
        props = body.get("properties") or {}
        existing = self.nics.get(rid.lower())
        location = _loc(body.get("location") or (existing.location if existing else ""))
        if not location:
            raise InvalidParameter("Required parameter 'location' is missing (null).", target="location")
        raw = props.get("ipConfigurations")
        if not isinstance(raw, list) or not raw:
            raise InvalidParameter("Network interface must have at least one IP configuration.",
                                   target="ipConfigurations", code="NetworkInterfaceMustHaveIpConfiguration")
        configs: list[dict[str, Any]] = []
        claimed: dict[str, str] = {}  # address → the ipconfig of this request that took it

        def in_use(ips: dict[str, str], address: str) -> bool:
            return address in claimed or ips.get(address, rid.lower()) != rid.lower()
        self._check_references(rid, [props.get("networkSecurityGroup")], NIC_REFERENCES[0][1])
        for i, c in enumerate(raw):
            cprops = dict(c.get("properties") or {})
            cname = c.get("name") or f"ipconfig{i + 1}"
            for key, rtype in NIC_REFERENCES[1:]:
                refs = cprops.get(key)
                if refs is not None and not isinstance(refs, list):
                    raise InvalidParameter(f"'{key}' must be a list of references.", target=key)
                self._check_references(rid, refs or [], rtype)
            subnet_id = (cprops.get("subnet") or {}).get("id")
            found = self.subnet(subnet_id) if isinstance(subnet_id, str) else None
            if found is None:
                raise reference_not_found(str(subnet_id), rid)
            vnet, subnet = found
            if vnet.location != location:
                raise reference_not_found(str(subnet_id), rid)
            net = _network(subnet["addressPrefix"], "subnet")
            method = cprops.get("privateIPAllocationMethod") or (
                "Static" if cprops.get("privateIPAddress") else "Dynamic")
            address = cprops.get("privateIPAddress") if method == "Static" else None
            if existing is not None and method == "Dynamic":
                old = next((oc for oc in existing.ip_configurations if oc["name"].lower() == cname.lower()), None)
                address = old["properties"].get("privateIPAddress") if old else None
            if address is not None:
                try:
                    ip = ipaddress.ip_address(address)
                except ValueError:
                    raise InvalidParameter(f"IP address {address} is not valid.", target="privateIPAddress") from None
                address = str(ip)
                cfg_id = f"{rid}/ipConfigurations/{cname}"
                if ip not in net:
                    raise private_ip_not_in_subnet(address, subnet["addressPrefix"])
                if method == "Static" and reserved_address(net, ip):
                    raise private_ip_reserved(address, subnet["addressPrefix"])
                if address in claimed:
                    raise private_ip_in_use(cfg_id, address, claimed[address])
                holder = self._vnet_ips(vnet.id).get(address, rid.lower())
                if holder != rid.lower():
                    raise private_ip_allocated(cfg_id, address, self._holder_config(holder, address))
            else:
                address = self._lowest_free(vnet.id, net, in_use)
                if address is None:
                    raise BadRequest(f"Subnet {subnet['name']} has no free IP addresses.",
                                     code="SubnetIsFull")
            claimed[address] = f"{rid}/ipConfigurations/{cname}"
            pip_ref = cprops.get("publicIPAddress")
            if isinstance(pip_ref, dict) and pip_ref.get("id"):
                pip = self.pips.get(str(pip_ref["id"]).lower())
                if pip is None:
                    raise reference_not_found(str(pip_ref["id"]), rid)
                cfg_id = f"{rid}/ipConfigurations/{cname}"
                if pip.ip_configuration and pip.ip_configuration.lower() != cfg_id.lower():
                    raise BadRequest(f"Resource {pip.id} is already in use by {pip.ip_configuration}.",
                                     code="PublicIPAddressInUse")
            cprops.update(privateIPAllocationMethod=method, privateIPAddress=address,
                          privateIPAddressVersion=cprops.get("privateIPAddressVersion", "IPv4"),
                          primary=bool(cprops.get("primary", i == 0)))
            cprops.pop("provisioningState", None)
            configs.append({"name": cname, "properties": cprops})
        extra = {k: v for k, v in props.items() if k in (
            "enableAcceleratedNetworking", "enableIPForwarding", "networkSecurityGroup", "dnsSettings",
            "auxiliaryMode", "auxiliarySku", "disableTcpStateTracking")}
        # apply: release public IPs no longer referenced, claim the new ones
        if existing is not None:
            for c in existing.ip_configurations:
                self._release_pip(c)
        for c in configs:
            pip_ref = c["properties"].get("publicIPAddress")
            if isinstance(pip_ref, dict) and pip_ref.get("id"):
                self.pips[str(pip_ref["id"]).lower()].ip_configuration = f"{rid}/ipConfigurations/{c['name']}"
        nic = existing or NetworkInterface(rid, name, self.sub.rg(rg).name, location, configs)
        self._vnet_ips("")  # bring the index up to date before changing it
        if existing is not None:
            self._index_ips(existing, add=False)
        nic.ip_configurations, nic.extra, nic.tags = configs, extra, dict(body.get("tags") or {})
        self._index_ips(nic, add=True)
        self._ips_nics += existing is None
        nic.etag = _etag()
        self.nics[rid.lower()] = nic
        return nic, existing is None

    def _check_references(self, rid: str, refs: list[Any], rtype: str) -> None:
        for ref in refs:
            if ref is None:
                continue
            ref_id = ref.get("id") if isinstance(ref, dict) else None
            if not unmodelled_reference(self.sub, ref_id, rtype):
                raise reference_not_found(str(ref_id), rid)

    def _lowest_free(self, vnet_id: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                     in_use: Callable[[dict[str, str], str], bool]) -> str | None:
        """The lowest free address of the subnet ``net``, as Azure's Dynamic allocation gives it: it reserves the
        first four and the last one of a subnet. The scan starts at the subnet's low-water mark."""
        ips = self._vnet_ips(vnet_id)
        key = (vnet_id.lower(), str(net))
        offset = max(4, self._low_free.get(key, 4))
        low = None  # the first offset not held by a NIC (an address this request claimed does not count)
        while offset <= net.num_addresses - 2:
            candidate = str(net.network_address + offset)
            if low is None and candidate not in ips:
                low = offset
            if not in_use(ips, candidate):
                self._low_free[key] = offset if low is None else low
                return candidate
            offset += 1
        self._low_free[key] = offset if low is None else low
        return None

    def _holder_config(self, nic_key: str, address: str) -> str:
        """The id of the ipconfig of NIC ``nic_key`` (lower id) that holds ``address``."""
        nic = self.nics.get(nic_key)
        for c in nic.ip_configurations if nic is not None else []:
            if c.get("properties", {}).get("privateIPAddress") == address:
                return f"{nic.id}/ipConfigurations/{c['name']}" if nic is not None else nic_key
        return nic_key

    def _release_pip(self, config: dict[str, Any]) -> None:
        ref = config.get("properties", {}).get("publicIPAddress")
        pip = self.pips.get(str((ref or {}).get("id", "")).lower()) if isinstance(ref, dict) else None
        if pip is not None:
            pip.ip_configuration = None

    def delete_nic(self, nic: NetworkInterface, *, cascade_pips: bool = False) -> None:
        if nic.virtual_machine:
            raise nic_in_use(nic.id, nic.virtual_machine)
        for c in nic.ip_configurations:
            ref = c.get("properties", {}).get("publicIPAddress")
            self._release_pip(c)
            if cascade_pips and isinstance(ref, dict) and (ref.get("properties") or {}).get("deleteOption") == "Delete":
                self.pips.pop(str(ref.get("id", "")).lower(), None)
        self._vnet_ips("")
        self._index_ips(nic, add=False)
        del self.nics[nic.id.lower()]
        self._ips_nics -= 1

    def delete_pip(self, pip: PublicIPAddress) -> None:
        if pip.ip_configuration:
            raise BadRequest(f"Public IP address {pip.id} can not be deleted since it is still allocated to resource "
                             f"{pip.ip_configuration}. In order to delete the public IP, disassociate/detach the "
                             "Public IP address from the resource.", code="PublicIPAddressCannotBeDeleted")
        del self.pips[pip.id.lower()]

    # --- the VM side --------------------------------------------------------------------------------
    def plan_vm_nics(self, vm_id: str, location: str, props: dict[str, Any]) -> list[NetworkInterface]:
        """Check a VM's networkProfile (NICs exist, same region, free, one primary); change nothing."""
        profile = props.get("networkProfile")
        refs = (profile or {}).get("networkInterfaces") if isinstance(profile, dict) else None
        if not refs:
            if isinstance(profile, dict) and profile.get("networkInterfaceConfigurations"):
                raise InvalidParameter("networkInterfaceConfigurations are not supported by armsim; create the NIC "
                                       "and reference it.", target="networkProfile")
            raise InvalidParameter("Required parameter 'networkProfile' is missing (null).", target="networkProfile")
        nics = []
        for ref in refs:
            nic_id = ref.get("id") if isinstance(ref, dict) else None
            nic = self.nics.get(str(nic_id).lower()) if nic_id else None
            if nic is None:
                raise NotFound(f"Resource {nic_id} not found.", code="NotFound")
            if nic.virtual_machine and nic.virtual_machine.lower() != vm_id.lower():
                raise BadRequest(f"Network interface {nic.id} is in use by another virtual machine "
                                 f"{nic.virtual_machine}.", code="NicInUse")
            if nic.location != _loc(location):
                raise BadRequest(f"Network interface {nic.id} is in location '{nic.location}' but the virtual "
                                 f"machine is in '{_loc(location)}'.", code="NicLocationMismatch")
            ref.setdefault("properties", {})
            if len(refs) == 1:
                ref["properties"].setdefault("primary", True)
            nics.append(nic)
        if len(refs) > 1 and sum(1 for r in refs if (r.get("properties") or {}).get("primary")) != 1:
            raise InvalidParameter(f"Virtual machine {vm_id.rsplit('/', 1)[-1]} must have one network interface "
                                   "set as the primary.", target="networkProfile")
        return nics

    def attach_vm_nics(self, vm_id: str, nics: list[NetworkInterface]) -> None:
        for nic in nics:
            nic.virtual_machine = vm_id
            if nic.mac_address is None:
                nic.mac_address = "-".join(f"{b:02X}" for b in hashlib.sha256(nic.id.lower().encode()).digest()[:6])

    def detach_vm_nics(self, vm_id: str) -> None:
        for nic in self.nics.values():
            if nic.virtual_machine and nic.virtual_machine.lower() == vm_id.lower():
                nic.virtual_machine = None

    def release_vm_nics(self, vm_id: str, refs: list[dict[str, Any]]) -> None:
        """The VM was deleted: NICs whose deleteOption is Delete are deleted (with their Delete-marked public
        IPs), the others are detached and reusable."""
        self.detach_vm_nics(vm_id)
        for ref in refs:
            nic = self.nics.get(str(ref.get("id", "")).lower())
            if nic is not None and (ref.get("properties") or {}).get("deleteOption") == "Delete":
                self.delete_nic(nic, cascade_pips=True)


def reserved_address(net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                     ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Azure reserves the first four addresses and the last one of every subnet (azure-docs, "Azure Virtual Network
    FAQ": x.x.x.0 network, .1 gateway, .2 and .3 Azure DNS, and the broadcast address). armsim applies the same rule
    to IPv6 subnets (not verified for IPv6)."""
    offset = int(ip) - int(net.network_address)
    return offset < 4 or offset == net.num_addresses - 1


def private_ip_not_in_subnet(address: str, prefix: str) -> BadRequest:
    """400, code and message as a 2025 lab log of real Azure quotes them (also AKS and ingress-nginx write-ups)."""
    return BadRequest(f"Private static IP address {address} does not belong to the range of subnet prefix {prefix}.",
                      code="PrivateIPAddressNotInSubnet")


def private_ip_reserved(address: str, prefix: str) -> BadRequest:
    """400 ``PrivateIPAddressInReservedRange``: code in azure-docs' "common deployment errors" table and
    terraform-provider-azurerm #4225; message as a 2025 lab log of real Azure quotes it."""
    return BadRequest(f"Private static IP address {address} falls within reserved IP range of subnet prefix "
                      f"{prefix}.", code="PrivateIPAddressInReservedRange")


def private_ip_allocated(config_id: str, address: str, holder: str) -> BadRequest:
    """An address another NIC holds: 400 ``PrivateIPAddressIsAllocated`` with this message
    (F5Networks/terraform-azure-bigip-module #63, 2024; acs-engine-terraform #10, 2018; a 2025 lab log)."""
    return BadRequest(f"IP configuration {config_id} is using the private IP address {address} which is already "
                      f"allocated to resource {holder}.", code="PrivateIPAddressIsAllocated")


def private_ip_in_use(config_id: str, address: str, other: str) -> BadRequest:
    """Two ipconfigs of one request asking for one address: 400 ``PrivateIPAddressInUse``, the code and message
    bosh-azure-cpi-release #121 (2016) quotes for an address taken by another ipconfig; that Azure still answers it
    for this case is armsim's assumption (not verified)."""
    return BadRequest(f"IP configuration {config_id} is using the same private IP address {address} as IP "
                      f"configuration {other}.", code="PrivateIPAddressInUse")


def _network(prefix: str, target: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        raise InvalidParameter(f"Address prefix {prefix} is not valid.", target=target) from None


__all__ = ["ArmError", "NetworkState"]
