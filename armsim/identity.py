"""Tokens and the managed-identity endpoint (App Service / Azure Automation protocol).

``ManagedIdentityCredential`` sees ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER`` and calls
``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…`` with header ``X-IDENTITY-HEADER``.
armsim answers with a JWT-shaped token whose ``oid`` claim is the principal that RBAC checks.
The endpoint is plain HTTP on loopback, as on an Automation sandbox.

Two kinds of secret open it: the server-wide ``IDENTITY_HEADER`` (any principal: ``client_id`` /
``object_id`` / ``mi_res_id`` as given, else ``SYSTEM_IDENTITY``), and per-job secrets granted by the
Automation sandbox (``IdentityGrant``): only the job's account identities, 400 for any other client id.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# The principal a token from the identity endpoint carries when no client_id is given.
SYSTEM_IDENTITY = "11111111-aaaa-4bbb-8ccc-000000000001"
TOKEN_LIFETIME = 3600 * 4


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(principal: str, tenant: str, *, resource: str = "https://management.azure.com",
               lifetime: int = TOKEN_LIFETIME) -> tuple[str, int]:
    """An unsigned JWT-shaped access token for ``principal`` and its expiry (epoch seconds)."""
    now = int(time.time())
    exp = now + lifetime
    header = _b64(json.dumps({"typ": "JWT", "alg": "none"}).encode())
    claims = {"aud": resource, "iss": f"https://sts.windows.net/{tenant}/", "oid": principal,
              "tid": tenant, "iat": now, "nbf": now - 300, "exp": exp, "appid": principal, "ver": "1.0"}
    return f"{header}.{_b64(json.dumps(claims).encode())}.armsim", exp


def token_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT-shaped token (armsim's are unsigned), or None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def principal_of(token: str) -> str | None:
    """The ``oid`` of a token armsim issued, or None for anything else."""
    oid = (token_claims(token) or {}).get("oid")
    return oid if isinstance(oid, str) and oid else None


class StaticTokenCredential:
    """A TokenCredential that hands out armsim tokens for one principal (for tests and the demo). Each token's
    ``aud`` is the resource of the scope asked for, as Entra ID issues them: ARM accepts a management token,
    Key Vault a vault one."""

    def __init__(self, principal: str = "armsim-user", tenant: str = "armsim-tenant") -> None:
        self.principal, self.tenant = principal, tenant

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        resource = scopes[0].removesuffix("/.default") if scopes else "https://management.azure.com"
        token, exp = make_token(self.principal, self.tenant, resource=resource)
        return AccessToken(token, exp)


UNKNOWN_CLIENT_ID = "User assigned identity is currently not supported clientID must not be passed in request"


@dataclass
class IdentityGrant:
    """The identities one per-job secret may get tokens for: an Automation account's system-assigned
    principal (``system``) and its user-assigned identities (UAMI resource id → principalId/clientId)."""

    tenant: str
    system: str | None = None
    user_assigned: dict[str, dict[str, str]] = field(default_factory=dict)

    def principal_for(self, query: dict[str, str]) -> tuple[str | None, str]:
        """(principal, "") for the identity the request names, or (None, why not)."""
        uamis = self.user_assigned.values()
        if query.get("client_id"):
            wanted = query["client_id"].lower()
            found = [u["principalId"] for u in uamis if u["clientId"].lower() == wanted]
            return (found[0], "") if found else (None, UNKNOWN_CLIENT_ID)
        if query.get("mi_res_id"):
            ids = {k.lower(): u["principalId"] for k, u in self.user_assigned.items()}
            principal = ids.get(query["mi_res_id"].lower())
            return (principal, "") if principal else (None, UNKNOWN_CLIENT_ID)
        if query.get("object_id"):
            known = {p.lower() for p in [self.system, *(u["principalId"] for u in uamis)] if p}
            oid = query["object_id"].lower()
            return (oid, "") if oid in known else (None, UNKNOWN_CLIENT_ID)
        if self.system is None:
            return None, "No system-assigned managed identity is enabled for this Automation account."
        return self.system, ""


class IdentityServer:
    """Serves the managed-identity token endpoint on a loopback HTTP port, in a daemon thread."""

    def __init__(self, tenant: str, secret: str, host: str = "127.0.0.1") -> None:
        self.tenant, self.secret = tenant, secret
        self.grants: dict[str, IdentityGrant] = {}  # per-job secret → what it may get tokens for
        self._grants_lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stall

            def do_GET(self) -> None:
                self._answer(outer.token_response(self.path, dict(self.headers.items())))

            def do_POST(self) -> None:  # the documented form variant: resource=…[&client_id=…] in the body
                length = int(self.headers.get("Content-Length") or 0)
                form = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                target = self.path + ("&" if "?" in self.path else "?") + form if form else self.path
                self._answer(outer.token_response(target, dict(self.headers.items())))

            def _answer(self, result: tuple[int, dict[str, Any]]) -> None:
                status, body = result
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="armsim-identity", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/msi/token"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def grant(self, secret: str, grant: IdentityGrant) -> None:
        with self._grants_lock:
            self.grants[secret] = grant

    def revoke(self, secret: str) -> None:
        with self._grants_lock:
            self.grants.pop(secret, None)

    def token_response(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        lower = {k.lower(): v for k, v in headers.items()}
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path.rstrip("/") != "/msi/token":
            return 404, {"statusCode": 404, "message": f"No such endpoint: {parts.path}"}
        secret = lower.get("x-identity-header")
        with self._grants_lock:
            grant = self.grants.get(secret) if secret else None
        if secret != self.secret and grant is None:
            return 401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER header is missing or wrong."}
        resource = query.get("resource")
        if not resource:
            return 400, {"statusCode": 400, "message": "The 'resource' parameter is required."}
        tenant = self.tenant
        if grant is not None:
            found, why = grant.principal_for(query)
            if found is None:
                return 400, {"statusCode": 400, "message": why}
            principal, tenant = found, grant.tenant
        else:
            principal = (query.get("client_id") or query.get("object_id") or query.get("mi_res_id")
                         or SYSTEM_IDENTITY)
        token, exp = make_token(principal, tenant, resource=resource.rstrip("/"))
        return 200, {"access_token": token, "expires_on": str(exp), "resource": resource,
                     "token_type": "Bearer", "client_id": principal}
