"""Request and response values passed between the server, the router and the handlers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from armsim.errors import InvalidRequestContent


@dataclass
class ArmRequest:
    """One HTTP request as a handler sees it. Query keys keep their case; look them up with ``arg``."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    principal: str = "anonymous"
    fault_async_error: dict[str, Any] | None = None  # set by an ``async-failed`` fault rule
    activity: dict[str, Any] | None = None  # activity-log context of this request, if it is a write

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], body: bytes, base_url: str) -> ArmRequest:
        # An origin-form request target: path and query (urlsplit would read "//x" as a host name).
        raw_path, _, raw_query = target.partition("#")[0].partition("?")
        query = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        # ARM decodes the path before routing: the SDK sends a scope as "/%2Fsubscriptions%2F…" and names
        # with spaces as "%20". Repeated slashes (from a scope's own leading "/") collapse to one.
        path = re.sub(r"/{2,}", "/", unquote(raw_path)) or "/"
        return cls(method.upper(), path, query, {k.lower(): v for k, v in headers.items()}, body, base_url)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, matched case-insensitively (ARM ignores the case of parameter names)."""
        lname = name.lower()
        for k, v in self.query.items():
            if k.lower() == lname:
                return v
        return default

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() == "true"

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; anything else is ARM's 400 InvalidRequestContent."""
        if not self.body.strip():
            raise InvalidRequestContent("The request content was invalid and could not be deserialized: 'empty body'.")
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidRequestContent(
                f"The request content was invalid and could not be deserialized: '{e}'."
            ) from None
        if not isinstance(data, dict):
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized: 'expected a JSON object'."
            )
        return data

    def json_or_empty(self) -> dict[str, Any]:
        return self.json() if self.body.strip() else {}

    def text(self) -> str:
        """The body as text (e.g. a ``text/plain`` runbook script); bad UTF-8 is 400 InvalidRequestContent."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidRequestContent(f"The request content is not valid UTF-8 text: '{e}'.") from None

    @property
    def api_version(self) -> str | None:
        return self.arg("api-version")


@dataclass
class ArmResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


def ok(body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> ArmResponse:
    return ArmResponse(status, body, dict(headers or {}))


def text(body: str, status: int = 200) -> ArmResponse:
    """A ``text/plain`` response (runbook content, job output)."""
    return ArmResponse(status, body.encode("utf-8"), {}, "text/plain; charset=utf-8")
