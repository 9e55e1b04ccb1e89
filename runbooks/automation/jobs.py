"""Start a job of a published runbook and follow it: status changes and stream records as they arrive."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbooks.automation.package import RUNBOOKS
from runbooks.azure import AZURE_ERRORS, call_failed
from runbooks.azure import as_json as _d
from runbooks.errors import ApplyFailed, UsageError

TERMINAL = {"Completed", "Failed", "Stopped", "Suspended"}


@dataclass
class JobResult:
    job_id: str
    status: str
    streams: list[dict[str, Any]] = field(default_factory=list)  # {"type", "text"} in arrival order
    exception: str | None = None
    output: str = ""  # the whole Output stream (stream summaries in the list are shortened)


def follow_job(client: Any, resource_group: str, account: str, runbook: str, parameter: str, *,
               timeout: float = 3600.0, progress: Callable[[str], None] = print) -> JobResult:
    """Create the job (one JSON parameter, as the runbooks expect), poll it to a terminal status, print streams."""
    if runbook not in RUNBOOKS:
        raise UsageError(f"unknown runbook '{runbook}': use {' or '.join(RUNBOOKS)}")
    job_id = str(uuid.uuid4())
    body = {"properties": {"runbook": {"name": runbook}, "parameters": {"parameter": parameter}, "runOn": ""}}
    try:
        client.job.create(resource_group, account, job_id, body)
        progress(f"job {job_id} of {runbook} created")
        result = JobResult(job_id, "New")
        seen: set[str] = set()
        deadline, pause = time.monotonic() + timeout, 0.2
        while True:
            props = _d(client.job.get(resource_group, account, job_id)).get("properties", {})
            status = str(props.get("status", "New"))
            if status != result.status:
                progress(f"job {job_id}: {status}")
                result.status = status
            for record in client.job_stream.list_by_job(resource_group, account, job_id):
                rec = _d(record).get("properties", _d(record))
                sid = str(rec.get("jobStreamId") or rec.get("id") or _d(record).get("id"))
                if sid in seen:
                    continue
                seen.add(sid)
                kind, text = str(rec.get("streamType", "Output")), str(rec.get("summary") or "")
                result.streams.append({"type": kind, "text": text})
                progress(text if kind == "Output" else f"{kind.upper()}: {text}")
            if status in TERMINAL:
                result.exception = props.get("exception")
                text = client.job.get_output(resource_group, account, job_id)
                result.output = text.decode() if isinstance(text, bytes) else str(text or "")
                if result.exception and status == "Failed":
                    progress(f"job exception: {str(result.exception).strip().splitlines()[-1]}")
                return result
            if time.monotonic() > deadline:
                raise ApplyFailed(f"job {job_id} still {status} after {timeout:.0f} s (it keeps running; "
                                  "follow it in the portal or stop it)")
            time.sleep(pause)
            pause = min(pause * 1.5, 5.0)
    except AZURE_ERRORS as e:
        raise call_failed(e, f"job of {runbook}") from e
