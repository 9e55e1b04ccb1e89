"""The request pipeline, from raw request to ARM response.

    control path (/_armsim/…)  → control API, no auth
    Key Vault path (/keyvault/…) → Key Vault's own branch: challenge, audience, data actions (armsim.keyvault.pipeline)
    api-version present?       → else 400 MissingApiVersionParameter
    Bearer token?              → else 401 (with --rbac: a token armsim issued)
    route                      → else 404 InvalidResourceType / 405
    world.advance()            → finish operations whose time has come
    throttling                 → 429 TooManyRequests + retry hint
    RBAC (--rbac)              → 403 AuthorizationFailed naming the missing action (not on LRO polls)
    disabled subscription      → 409 ReadOnlyDisabledSubscription on a write
    management locks           → 409 ScopeLocked
    policy assignments (deny)  → 403 RequestDisallowedByPolicy
    fault rules                → injected error / delay / dropped connection / async failure
    body shape (armsim.schema) → 400 InvalidRequestContent for a value of the wrong JSON type
    handler                    → provider responses.py → models.py
    activity log + request log
"""

from __future__ import annotations

import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

from armsim import faults, identity, schema, throttling
from armsim.authorization import rbac
from armsim.authorization.models import check_locks
from armsim.control import handle_control
from armsim.errors import (
    ArmError,
    AuthenticationFailed,
    InternalServerError,
    MissingApiVersionParameter,
    ReadOnlyDisabledSubscription,
)
from armsim.http import ArmRequest, ArmResponse
from armsim.insights.models import record_request
from armsim.keyvault import pipeline as keyvault
from armsim.policy.models import check_policy
from armsim.routing import Route, Router
from armsim.state import World


@dataclass
class Outcome:
    """What the server must do with a request: send ``response``, or drop the connection."""

    response: ArmResponse | None
    drop: bool = False
    delay: float = 0.0


def build_router() -> Router:
    from armsim.authorization import urls as authorization_urls
    from armsim.automation import urls as automation_urls
    from armsim.compute import urls as compute_urls
    from armsim.insights import urls as insights_urls
    from armsim.marketplaceordering import urls as marketplaceordering_urls
    from armsim.network import urls as network_urls
    from armsim.policy import urls as policy_urls
    from armsim.resourcehealth import urls as resourcehealth_urls
    from armsim.resources import generic as resources_generic
    from armsim.resources import urls as resources_urls
    from armsim.storage import urls as storage_urls

    router = Router()
    for module in (resources_urls, compute_urls, network_urls, authorization_urls, insights_urls, automation_urls,
                   resourcehealth_urls, policy_urls, storage_urls, resources_generic, marketplaceordering_urls):
        module.register(router)
    return router


class App:
    """Dispatches requests to the world; safe to call from many server threads."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.router = build_router()
        self.seq = 0

    def handle(self, req: ArmRequest) -> Outcome:
        if req.path.lower().startswith("/_armsim/"):
            try:
                return Outcome(handle_control(self, req))
            except ArmError as e:
                return Outcome(ArmResponse(e.status, e.body(), e.headers))
        started = time.time()
        if keyvault.owns(req.path):
            kv_route, kv_outcome = keyvault.dispatch(self.world, req)
            return self._finish(req, kv_route, kv_outcome, started)
        route: Route | None = None
        outcome = Outcome(None)
        try:
            if req.api_version is None:
                raise MissingApiVersionParameter()
            route, params = self.router.resolve(req)
            self.authenticate(req)
            with self.world.lock:
                self.world.advance()
                throttling.check(self.world, req, route)
                # Polling an operation's status URL needs no role of its own in ARM: a role scoped to a
                # resource group could otherwise never finish the operations it is allowed to start.
                if self.world.config.rbac and not route.lro_poll:
                    rbac.authorize(self.world, req, route)
                if route.kind != "read" and not route.lro_poll and req.path.lower().startswith("/subscriptions/"):
                    sub = self.world.subscriptions.get(req.path.split("/")[2].lower())
                    if sub is not None and sub.state == "Disabled":
                        raise ReadOnlyDisabledSubscription(sub.id)
                if route.kind != "read":
                    check_locks(self.world, req, route)
                    if not route.lro_poll and req.path.lower().startswith("/subscriptions/"):
                        sub_id = req.path.split("/")[2].lower()
                        if sub_id in self.world.subscriptions:
                            check_policy(self.world.subscriptions[sub_id], req)
                rule = faults.match(self.world, req)
                if rule is not None:
                    outcome = faults.apply(rule, req)
                    if outcome.response is not None or (outcome.drop and rule.get("when") != "after"):
                        return self._finish(req, route, outcome, started)
                if route.kind != "read":
                    req.activity = {"correlationId": str(uuid.uuid4()), "caller": req.principal,
                                    "action": route.action}
                if route.schema is not None:
                    schema.check(req.json(), route.schema)
                response = route.handler(self.world, req, **params)
                throttling.decorate(self.world, req, route, response)
                outcome.response = response
                return self._finish(req, route, outcome, started)
        except ArmError as e:
            outcome.response = ArmResponse(e.status, e.body(), e.headers)
            return self._finish(req, route, outcome, started)
        except Exception:  # a bug in armsim: say so in ARM's shape, keep the traceback out of the response
            traceback.print_exc()
            err = InternalServerError("armsim hit an internal error; see its log.")
            outcome.response = ArmResponse(err.status, err.body())
            return self._finish(req, route, outcome, started)

    def authenticate(self, req: ArmRequest) -> None:
        auth = req.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise AuthenticationFailed(
                "Authentication failed. The 'Authorization' header is missing.",
                headers={"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/", '
                                             'error="invalid_token"'},
            )
        principal = identity.principal_of(auth[7:].strip())
        if principal is None and self.world.config.rbac:
            raise AuthenticationFailed("The access token is invalid.", code="InvalidAuthenticationToken")
        req.principal = principal or "armsim-user"

    def _finish(self, req: ArmRequest, route: Route | None, outcome: Outcome, started: float) -> Outcome:
        response = outcome.response
        status = 0 if response is None else response.status
        with self.world.lock:
            self.seq += 1
            entry: dict[str, Any] = {
                "seq": self.seq, "method": req.method, "path": req.path, "query": req.query, "status": status,
                "start": started, "end": time.time(), "kind": route.kind if route else "read",
                "action": route.action if route else None, "principal": req.principal,
                "dropped": outcome.drop,
            }
            if response is not None and isinstance(response.body, dict) and "error" in response.body:
                entry["error"] = response.body["error"].get("code")
            self.world.requests.append(entry)
            if route is not None and route.kind != "read" and not route.lro_poll:
                record_request(self.world, req, route, response)
            if route is not None and route.kind != "read":
                self.world.dirty = True
        return outcome
