"""Diagnosis from what the operator has in hand: an RCA article's id, or an error ARM returned. Pure.

``runbook_for_article`` finds the playbook that serves an articleId; ``parse_error`` reads a pasted error (ARM's
JSON, azure-cli's ``(Code) message``, PowerShell's or Terraform's ``Code="…" Message="…"``, or plain text);
``playbooks_for_error`` says which playbooks' activity-log signals that error satisfies, and which of their
articles it picks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from runbooks.errors import UsageError
from runbooks.playbook import Playbook
from runbooks.signals import ActivityLogSignal

_CLI = re.compile(r"\((?P<code>[A-Za-z][\w.]*)\)\s*(?P<message>.*)", re.DOTALL)
_CODE_FIELD = re.compile(r"""\b(?:error\s*)?code["']?\s*[:=]\s*["']?(?P<code>[A-Za-z][\w.]*)""", re.IGNORECASE)
_MESSAGE_FIELD = re.compile(r"""\bmessage["']?\s*[:=]\s*["']?(?P<message>.+?)["']?\s*$""",
                            re.IGNORECASE | re.DOTALL)


def parse_error(text: str, code: str | None = None) -> tuple[str | None, str]:
    """(error code, message) of a pasted ARM error; ``code`` (given apart) wins over one found in the text."""
    text = (text or "").strip()
    found_code, message = None, text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err: dict[str, object] = data["error"] if isinstance(data.get("error"), dict) else data
        found_code, message = err.get("code"), str(err.get("message") or "")
    elif m := _CLI.match(text):
        found_code, message = m.group("code"), m.group("message").strip()
    elif m := _CODE_FIELD.search(text):
        found_code = m.group("code")
        if mm := _MESSAGE_FIELD.search(text[m.end():]):
            message = mm.group("message").strip()
    return (code or (str(found_code) if found_code else None)), message


@dataclass
class ErrorMatch:
    """A playbook the error belongs to: the signals it satisfies and the articles they pick."""

    playbook: Playbook
    signals: list[ActivityLogSignal] = field(default_factory=list)

    @property
    def articles(self) -> list[str]:
        ids = {s.id for s in self.signals}
        picked = [a for a, ref in self.playbook.article_signals.items() if ref in ids]
        return picked or list(self.playbook.articles)


def _satisfies(signal: ActivityLogSignal, code: str | None, message: str) -> bool:
    if signal.error_code and (code is None or signal.error_code.lower() != code.lower()):
        return False
    return not signal.message or re.search(signal.message, message, re.IGNORECASE) is not None


def playbooks_for_error(code: str | None, message: str, playbooks: Mapping[str, Playbook]) -> list[ErrorMatch]:
    """Every playbook one of whose activity-log ``detect`` signals this error satisfies (the operation it failed
    is not known from a pasted error, so a signal's ``operation`` is not checked), fixing playbooks first."""
    if not code and not message.strip():
        raise UsageError("give the error: --error TEXT (as ARM, the portal or the CLI printed it) or --code CODE")
    out = []
    for pb in playbooks.values():
        hits = [s for d in pb.detect if isinstance(s := pb.signal(d), ActivityLogSignal)
                and _satisfies(s, code, message)]
        if hits:
            out.append(ErrorMatch(pb, hits))
    return sorted(out, key=lambda m: m.playbook.explains)


def runbook_for_article(article_id: str, playbooks: Mapping[str, Playbook]) -> Playbook:
    """The playbook that serves this articleId (case-insensitive); UsageError naming the closest ids if none."""
    wanted = article_id.strip().lower()
    for pb in playbooks.values():
        if wanted in {a.lower() for a in pb.articles}:
            return pb
    known = sorted(a for pb in playbooks.values() for a in pb.articles)
    near = [a for a in known if wanted[:12] and a.lower().startswith(wanted[:12])][:3]
    hint = f"; did you mean {', '.join(near)}?" if near else "; invoke articles.coverage lists the claimed ids"
    raise UsageError(f"no playbook serves article '{article_id}'{hint}")
