"""Request-body shapes, checked before a handler runs — as ARM's resource providers deserialize a body
against their API model first and answer 400 ``InvalidRequestContent`` when a value has the wrong JSON type.

A shape is ``str``, ``int``, ``bool``, ``dict`` (any object) or ``list`` (any array); a ``{key: shape}``
dict is an object whose listed keys must have those shapes (other keys pass); ``[shape]`` is an array of
that shape. ``null`` is accepted everywhere (ARM treats it as absent). Only the fields armsim reads are
listed: the point is that no body can reach a model with a type the model does not expect.
"""

from __future__ import annotations

from typing import Any

from armsim.errors import InvalidRequestContent

Shape = Any

_NAMES = {str: "String", int: "Int32", bool: "Boolean", dict: "Object", list: "Array"}

SUB_RESOURCE: Shape = {"id": str}
TRACKED: Shape = {"location": str, "tags": dict, "zones": [str], "properties": dict, "sku": {"name": str}}


def tracked(properties: Shape, **top: Shape) -> Shape:
    return {**TRACKED, **top, "properties": properties}


_DATA_DISK: Shape = {"lun": int, "name": str, "createOption": str, "caching": str, "diskSizeGB": int,
                     "deleteOption": str, "toBeDetached": bool, "managedDisk": {"id": str, "storageAccountType": str}}
VIRTUAL_MACHINE = tracked({
    "hardwareProfile": {"vmSize": str},
    "storageProfile": {"imageReference": {"id": str, "publisher": str, "offer": str, "sku": str, "version": str},
                       "osDisk": {"osType": str, "name": str, "createOption": str, "caching": str, "diskSizeGB": int,
                                  "deleteOption": str, "managedDisk": {"id": str, "storageAccountType": str}},
                       "dataDisks": [_DATA_DISK]},
    "osProfile": {"computerName": str, "adminUsername": str, "adminPassword": str,
                  "linuxConfiguration": {"disablePasswordAuthentication": bool,
                                         "ssh": {"publicKeys": [{"path": str, "keyData": str}]}},
                  "windowsConfiguration": dict, "secrets": list},
    "networkProfile": {"networkInterfaces": [{"id": str, "properties": {"primary": bool, "deleteOption": str}}],
                       "networkInterfaceConfigurations": list},
    "securityProfile": {"securityType": str, "uefiSettings": dict},
    "userData": str,
}, plan={"name": str, "publisher": str, "product": str}, identity={"type": str, "userAssignedIdentities": dict},
    extendedLocation=dict)
EXTENSION = tracked({"publisher": str, "type": str, "typeHandlerVersion": str, "settings": dict,
                     "protectedSettings": dict})
DISK = tracked({"creationData": {"createOption": str, "sourceResourceId": str, "imageReference": dict},
                "diskSizeGB": int, "osType": str, "hyperVGeneration": str, "incremental": bool,
                "purchasePlan": {"name": str, "publisher": str, "product": str},
                "securityProfile": {"securityType": str}})
IMAGE = tracked({"sourceVirtualMachine": SUB_RESOURCE, "hyperVGeneration": str,
                 "storageProfile": {"osDisk": {"osType": str, "osState": str, "managedDisk": SUB_RESOURCE,
                                               "snapshot": SUB_RESOURCE, "diskSizeGB": int}}})
_SUBNET: Shape = {"name": str, "properties": {"addressPrefix": str}}
VIRTUAL_NETWORK = tracked({"addressSpace": {"addressPrefixes": [str]}, "subnets": [_SUBNET]})
SUBNET: Shape = {"properties": {"addressPrefix": str}}
NETWORK_INTERFACE = tracked({"ipConfigurations": [{
    "name": str, "properties": {"subnet": SUB_RESOURCE, "privateIPAddress": str, "privateIPAllocationMethod": str,
                                "primary": bool,
                                "publicIPAddress": {"id": str, "properties": {"deleteOption": str}}}}]})
PUBLIC_IP = tracked({"publicIPAllocationMethod": str, "dnsSettings": dict, "idleTimeoutInMinutes": int})
RESOURCE_GROUP = {"location": str, "tags": dict, "managedBy": str}
LOCK: Shape = {"properties": {"level": str, "notes": str, "owners": [dict]}}


def check(body: Any, shape: Shape, path: str = "") -> None:
    """Raise 400 InvalidRequestContent naming the first value whose JSON type does not fit ``shape``."""
    if body is None:
        return
    if isinstance(shape, dict):
        _expect(body, dict, path)
        for key, sub in shape.items():
            if key in body:
                check(body[key], sub, f"{path}.{key}" if path else key)
    elif isinstance(shape, list):
        _expect(body, list, path)
        for i, item in enumerate(body):
            check(item, shape[0], f"{path}[{i}]")
    else:
        _expect(body, shape, path)


def _expect(value: Any, kind: type, path: str) -> None:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise InvalidRequestContent(
            f"The request content was invalid and could not be deserialized: 'Error converting value "
            f"{_show(value)} to type '{_NAMES.get(kind, kind.__name__)}'. Path '{path}'.'.", target=path or None)


def _show(value: Any) -> str:
    import json

    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
