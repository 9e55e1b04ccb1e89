"""Key Vault secrets operations (data plane, REST shapes of api-version 7.x): set, get (latest or one
version), list a secret's versions, list secrets. Values appear only in set/get response bodies, which
armsim never logs."""

from __future__ import annotations

import json
from typing import Any

from armsim.http import ArmRequest, ArmResponse, ok
from armsim.keyvault.exceptions import BadParameter, SecretDisabled
from armsim.keyvault.models import Secret, SecretVersion, Vault, check_secret_name
from armsim.responses import page
from armsim.state import World

MAX_PAGE = 25


def _attributes(v: SecretVersion) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": v.enabled, "created": v.created, "updated": v.updated,
                             "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}
    if v.not_before is not None:
        attrs["nbf"] = v.not_before
    if v.expires is not None:
        attrs["exp"] = v.expires
    return attrs


def _item(vault: Vault, secret: Secret, v: SecretVersion, *, versioned: bool) -> dict[str, Any]:
    """A SecretItem (list entry, no value); with ``versioned`` its id names the version."""
    sid = f"{vault.uri}/secrets/{secret.name}" + (f"/{v.version}" if versioned else "")
    out: dict[str, Any] = {"id": sid, "attributes": _attributes(v)}
    if v.content_type:
        out["contentType"] = v.content_type
    if v.tags:
        out["tags"] = v.tags
    return out


def _bundle(vault: Vault, secret: Secret, v: SecretVersion) -> dict[str, Any]:
    """A SecretBundle: the item of this version plus its value."""
    return {"value": v.value, **_item(vault, secret, v, versioned=True)}


def _page_size(req: ArmRequest) -> int:
    raw = req.arg("maxresults")
    if raw is None:
        return MAX_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadParameter(f"The value '{raw}' of maxresults is invalid: use 1 to {MAX_PAGE}.")
    return int(raw)


def _body(req: ArmRequest) -> dict[str, Any]:
    try:
        data = json.loads(req.body or b"null")
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise BadParameter("The request body must be a JSON object.")
    return data


def _optional_int(attrs: dict[str, Any], key: str) -> int | None:
    value = attrs.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise BadParameter(f"The attribute '{key}' must be an integer (seconds since 1970).")
    return value


def set_secret(world: World, req: ArmRequest, vault: Vault, name: str) -> ArmResponse:
    body = _body(req)
    value = body.get("value")
    if not isinstance(value, str):
        raise BadParameter("The parameter 'value' is required and must be a string.")
    attrs = body.get("attributes") or {}
    tags = body.get("tags") or {}
    content_type = body.get("contentType")
    if not isinstance(attrs, dict) or not isinstance(tags, dict) or not isinstance(content_type, (str, type(None))):
        raise BadParameter("'attributes' and 'tags' must be objects and 'contentType' a string.")
    enabled = attrs.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadParameter("The attribute 'enabled' must be a boolean.")
    secret, version = vault.set_secret(name, value, world.clock(), enabled=enabled, content_type=content_type,
                                       not_before=_optional_int(attrs, "nbf"), expires=_optional_int(attrs, "exp"),
                                       tags={str(k): str(v) for k, v in tags.items()})
    world.dirty = True
    return ok(_bundle(vault, secret, version))


def get_secret(world: World, req: ArmRequest, vault: Vault, name: str, version: str = "") -> ArmResponse:
    secret, v = vault.get(name, version or None)
    if not v.enabled:
        raise SecretDisabled()
    return ok(_bundle(vault, secret, v))


def list_versions(world: World, req: ArmRequest, vault: Vault, name: str) -> ArmResponse:
    check_secret_name(name)
    size = _page_size(req)
    secret = vault.secrets.get(name.lower())
    if secret is None:  # Key Vault lists no versions of a secret it does not have (no 404)
        return ok({"value": [], "nextLink": None})
    return page(req, secret.versions, lambda v: _item(vault, secret, v, versioned=True), size)


def list_secrets(world: World, req: ArmRequest, vault: Vault) -> ArmResponse:
    size = _page_size(req)
    secrets = sorted((s for s in vault.secrets.values() if s.versions), key=lambda s: s.name.lower())
    return page(req, secrets, lambda s: _item(vault, s, s.current, versioned=False), size)
