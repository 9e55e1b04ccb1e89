"""The Key Vault branch of the request pipeline (``App.handle`` sends every ``/keyvault/…`` path here).

    vault known?             → else the connection is dropped, like a vault DNS name that does not resolve
    route                    → else 404 NotFound / 405 MethodNotAllowed
    api-version known?       → else 400 BadParameter
    Bearer token?            → else 401 + challenge (WWW-Authenticate: authorization=<tenant>, resource=vault)
    token audience is vault  → else 401 AKV10022 (an ARM token is refused, as in Azure)
    RBAC data action (--rbac) → 403 Forbidden, innererror ForbiddenByRbac
    fault rules              → injected error / delay / dropped connection (armsim.faults)
    handler                  → armsim.keyvault.responses

No ARM throttling, locks or activity log: those are control-plane only in Azure too.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING

from armsim import faults
from armsim.authorization import rbac
from armsim.errors import ArmError, InternalServerError, InvalidResourceType
from armsim.errors import MethodNotAllowed as ArmMethodNotAllowed
from armsim.http import ArmRequest, ArmResponse
from armsim.identity import token_claims
from armsim.keyvault.exceptions import (
    VAULT_RESOURCE,
    ForbiddenByRbac,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    invalid_audience,
    invalid_token,
    missing_api_version,
    missing_token,
    unknown_api_version,
)
from armsim.keyvault.models import Vault, find_vault
from armsim.routing import Route, Router
from armsim.state import World

if TYPE_CHECKING:
    from armsim.app import Outcome

PREFIX = "/keyvault/"
# The secrets API versions of azure-keyvault-secrets 4.x; the latest is what the SDK sends by default.
API_VERSIONS = ("2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01")

_router: Router | None = None


def owns(path: str) -> bool:
    return path.lower().startswith(PREFIX)


def router() -> Router:
    global _router
    if _router is None:
        from armsim.keyvault import urls

        _router = Router()
        urls.register(_router)
    return _router


def authenticate(req: ArmRequest, vault: Vault) -> None:
    auth = req.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        raise missing_token(vault.tenant_id)
    claims = token_claims(auth[7:].strip())
    if claims is None or not isinstance(claims.get("oid"), str) or not claims["oid"]:
        raise invalid_token(vault.tenant_id)
    audience = str(claims.get("aud", ""))
    if audience.rstrip("/").lower() != VAULT_RESOURCE:
        raise invalid_audience(audience, vault.tenant_id)
    expires = claims.get("exp")
    if isinstance(expires, (int, float)) and expires < time.time():
        raise Unauthorized("AKV10021: The access token has expired.", vault.tenant_id)
    req.principal = claims["oid"]


def authorize(world: World, req: ArmRequest, route: Route, vault: Vault, params: dict[str, str]) -> None:
    scope = vault.scope(params.get("name"))
    if not rbac.allowed(world, req.principal, route.action, scope, data=True):
        raise ForbiddenByRbac(principal=req.principal, tenant=vault.tenant_id, action=route.action, scope=scope,
                              vault=vault.name, location=vault.location)


def _resolve(req: ArmRequest) -> tuple[Route, dict[str, str]]:
    try:
        return router().resolve(req)
    except InvalidResourceType:
        raise NotFound(f"The request URI '{req.path}' is not a Key Vault secrets operation armsim serves.") from None
    except ArmMethodNotAllowed:
        raise MethodNotAllowed(f"The requested resource does not support http method '{req.method}'.") from None


def dispatch(world: World, req: ArmRequest) -> tuple[Route | None, Outcome]:
    """Answer one data-plane request; returns the route (for the request log) and what to send."""
    from armsim.app import Outcome

    route: Route | None = None
    outcome = Outcome(None)
    try:
        with world.lock:
            vault = find_vault(world, req.path[len(PREFIX):].split("/", 1)[0])
            if vault is None:
                return None, Outcome(None, drop=True)
            route, params = _resolve(req)
            if req.api_version is None:
                raise missing_api_version()
            if req.api_version not in API_VERSIONS:
                raise unknown_api_version(req.api_version, API_VERSIONS[-1])
            authenticate(req, vault)
            if world.config.rbac:
                authorize(world, req, route, vault, params)
            rule = faults.match(world, req)  # after authentication: a challenge request is never a match
            if rule is not None:
                outcome = faults.apply(rule, req)
                if outcome.response is not None or (outcome.drop and rule.get("when") != "after"):
                    return route, outcome
            params.pop("vault", None)
            outcome.response = route.handler(world, req, vault, **params)
            return route, outcome
    except ArmError as e:
        outcome.response = ArmResponse(e.status, e.body(), e.headers)
        return route, outcome
    except Exception:  # a bug in armsim: say so, keep the traceback out of the response
        traceback.print_exc()
        err = InternalServerError("armsim hit an internal error; see its log.")
        outcome.response = ArmResponse(err.status, err.body())
        return route, outcome
