"""The Automation job runner: runs a job's published Python runbook the way Azure's Linux Python 3.10 sandbox
does (azure-automation.md §3-§7, §12), and imports package wheels from their contentLink.

A job goes New → Activating → Running → Completed | Failed | Stopped:

    interpreter   a real Python 3.10 (Config.sandbox_python, else python3.10 on PATH or under pyenv);
                  none → the job Fails with an Error record saying so. Run with -s -S: no default packages.
    files         a fresh job dir under the workdir: the script, an empty cwd (also HOME); the runtime
                  environment's Succeeded wheels unzipped into a site dir (cached per wheel set) on PYTHONPATH.
                  No dependency resolution: a missing wheel is a ModuleNotFoundError at run time, as in Azure.
    argv          the job's parameter values in order, each ``str(json.loads(v))`` when it parses (the Linux
                  worker's rule: '"x"' → x, 'true' → True), else as given. Names are ignored.
    environment   IDENTITY_ENDPOINT + IDENTITY_HEADER (a per-job secret: tokens for the account's identities
                  only), AUTOMATION_JOB_ID; and, standing in for the sandbox's route to management.azure.com,
                  RUNBOOKS_ARM_ENDPOINT / RUNBOOKS_CA_BUNDLE / AZURE_SUBSCRIPTION_ID pointing at this armsim,
                  with REQUESTS_CA_BUNDLE / SSL_CERT_FILE = armsim's CA so any https client trusts it.
    streams       stdout lines by prefix (ERROR:/WARNING:/VERBOSE:/DEBUG: in lower, UPPER or Capitalized case;
                  the prefix stays in the text) → Error/Warning/Verbose/Debug, the rest → Output; stderr lines →
                  Error. Verbose is kept only with the runbook's logVerbose, Debug never. A record is cut at
                  1 MiB. stdout is a pipe, so it is block-buffered unless the runbook flushes (as in Azure).
    outcome       exit 0 → Completed; else Failed with exception = the tail of stderr; Config.job_time_limit_s
                  (default 3 h, Azure's fair share; real seconds, not scaled by latency_scale) → SIGTERM →
                  Stopped; a stop request → SIGTERM → Stopped (SIGKILL after a grace period).

Jobs run in background threads that take the world lock only to read and record state: the runbook calls
back into armsim. At most Config.sandbox_max_jobs run at once; the rest wait as New.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import traceback
import urllib.error
import urllib.request
import uuid
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from armsim.automation.models import AutomationState, Job, JobSchedule, Package, next_run, parse_time
from armsim.errors import ArmError
from armsim.identity import IdentityGrant

if TYPE_CHECKING:
    from armsim.identity import IdentityServer
    from armsim.state import Subscription, World

RECORD_LIMIT = 1024 * 1024  # "A single stream cannot be larger than 1 MiB"
PACKAGE_LIMIT = 100 * 1024 * 1024
STDERR_TAIL = 16 * 1024
STOP_GRACE_S = 10.0
PACKAGE_IMPORT_S = 30.0  # import latency at latency scale 1 (Config.latencies["automation.package"] overrides)
FAIR_SHARE_EXCEPTION = ("The job was evicted and subsequently reached a Stopped state. The job cannot continue "
                        "running.")
NO_PYTHON = ("armsim found no Python 3.10 interpreter for Automation jobs: install python3.10 or set "
             "Config.sandbox_python to its path.")
_PREFIXES = (("DEBUG:", "Debug"), ("ERROR:", "Error"), ("VERBOSE:", "Verbose"), ("WARNING:", "Warning"))
_WHEEL = re.compile(r"^(?P<dist>[^-]+)-(?P<ver>[^-]+)(?:-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)-"
                    r"(?P<plat>[^-]+)\.whl$", re.IGNORECASE)

RUNTIMES: weakref.WeakKeyDictionary[World, AutomationRuntime] = weakref.WeakKeyDictionary()


def runtime_for(world: World) -> AutomationRuntime | None:
    """The runner attached to this world (by ArmSim); None for a bare World, whose jobs then stay New."""
    return RUNTIMES.get(world)


# --- pure rules ------------------------------------------------------------------------------------------
def classify(line: str) -> str:
    """The stream a stdout line goes to, by the worker's prefixes (lower, UPPER or Capitalized only)."""
    for prefix, stream in _PREFIXES:
        if line.startswith((prefix.lower(), prefix.upper(), prefix.capitalize())):
            return stream
    return "Output"


def argv_value(value: str) -> str:
    """One parameter as the Linux worker passes it: ``str(json.loads(v))`` if it parses, else ``v``."""
    try:
        return str(json.loads(value))
    except ValueError:
        return value


def wheel_problem(filename: str) -> str | None:
    """Why the Python 3.10 Linux sandbox cannot use this file, or None if its tags fit
    (cp310 / abi3 / none ABI, manylinux x86_64 or any platform, a Python 3 tag)."""
    m = _WHEEL.match(filename)
    if m is None:
        return (f"'{filename}' is not a wheel: Python 3.10 runtime environments accept .whl files only "
                "(cp310, abi3 or py3-none-any; manylinux x86_64).")
    pys, abis, plats = (m.group(k).lower().split(".") for k in ("py", "abi", "plat"))
    if not any(a in ("cp310", "abi3", "none") for a in abis):
        return f"Wheel '{filename}' has ABI tag '{m.group('abi')}'; Python 3.10 needs cp310, abi3 or none."
    if not any(p == "any" or (p.startswith("manylinux") and p.endswith("_x86_64")) for p in plats):
        return (f"Wheel '{filename}' is built for platform '{m.group('plat')}'; the Python 3.10 sandbox is Linux "
                "x86_64 (manylinux…_x86_64 or any).")

    def py_ok(tag: str) -> bool:
        if tag in ("py3", "cp310", "py310", "py2.py3"):
            return True
        found = re.fullmatch(r"(?:cp|py)3(\d+)", tag)
        return found is not None and int(found.group(1)) <= 10 and ("abi3" in abis or "none" in abis)

    if not any(py_ok(p) for p in pys):
        return f"Wheel '{filename}' has Python tag '{m.group('py')}', which Python 3.10 cannot load."
    return None


_PYTHON_CACHE: dict[str, str | None] = {}


def find_python(configured: str = "") -> str | None:
    """A working Python 3.10 interpreter: the configured one, else python3.10 on PATH, else under pyenv."""
    if configured in _PYTHON_CACHE:
        return _PYTHON_CACHE[configured]
    candidates = [configured] if configured else [shutil.which("python3.10") or "", *sorted(glob.glob(
        os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv")) + "/versions/3.10*/bin/python3.10"))]
    found = None
    for exe in filter(None, candidates):
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                                 capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            found = exe
            break
    _PYTHON_CACHE[configured] = found
    return found


# --- the runner ------------------------------------------------------------------------------------------
@dataclass
class _JobControl:
    sub_id: str
    key: str
    proc: subprocess.Popen[bytes] | None = None
    stop_requested: bool = False
    timed_out: bool = False
    cancelled: bool = False  # the world was reset or the job deleted: drop it without recording anything
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Plan:
    """What a job needs, read from the world under its lock before anything runs."""

    job_id: str
    runbook: str
    content: str
    argv: list[str]
    log_verbose: bool
    grant: IdentityGrant
    wheels: list[dict[str, Any]]
    time_limit: float
    python: str


class AutomationRuntime:
    """Runs jobs and imports packages for one world. ArmSim creates it (``attach``) with its endpoint, CA
    bundle, identity server and workdir."""

    def __init__(self, world: World, *, workdir: Path, endpoint: Callable[[], str], ca_bundle: str,
                 identity: IdentityServer | None) -> None:
        self.world = world
        self.root = workdir / "automation"
        self.endpoint = endpoint
        self.ca_bundle = ca_bundle
        self.identity = identity
        self._jobs: dict[str, _JobControl] = {}
        self._cv = threading.Condition()
        self._running = 0
        self._fetching: set[str] = set()
        self._site_lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def attach(self) -> AutomationRuntime:
        RUNTIMES[self.world] = self
        return self

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Resume jobs a saved state left unfinished (Azure restarts an interrupted job from the beginning)
        and start the scheduler that fires job schedules when their schedule's time comes."""
        with self.world.lock:
            for sub in self.world.subscriptions.values():
                for key, job in sub.automation.jobs.items():
                    if not job.done and key not in self._jobs:
                        job.set_status("New", self.world.clock())
                        self.submit(sub.id, key)
        self._ticker = threading.Thread(target=self._schedule_loop, name="armsim-automation-scheduler", daemon=True)
        self._ticker.start()

    def shutdown(self) -> None:
        self._stop.set()
        self.cancel_all()

    def cancel_all(self) -> None:
        """Kill every job process and forget the jobs (the world is being reset or shut down)."""
        with self._cv:
            controls = list(self._jobs.values())
            self._jobs.clear()
            for ctl in controls:
                ctl.cancelled = True
                self._signal(ctl, signal.SIGKILL)
            self._cv.notify_all()

    def cancel(self, keys: list[str]) -> None:
        with self._cv:
            for key in keys:
                ctl = self._jobs.pop(key, None)
                if ctl is not None:
                    ctl.cancelled = True
                    self._signal(ctl, signal.SIGKILL)
            self._cv.notify_all()

    # --- packages -----------------------------------------------------------------------------------
    def import_seconds(self) -> float:
        cfg = self.world.config
        return cfg.latencies.get("automation.package", PACKAGE_IMPORT_S) * cfg.latency_scale

    def fetch_package(self, sub_id: str, pkg: Package) -> None:
        """Start downloading and checking a package's wheel in the background (called under the world lock)."""
        if pkg.id.lower() in self._fetching:
            return
        self._fetching.add(pkg.id.lower())
        link = dict(pkg.content_link)
        threading.Thread(target=self._fetch_thread, args=(sub_id, pkg.id.lower(), pkg.modified, link, pkg.filename),
                         name="armsim-package-import", daemon=True).start()

    def refresh_package(self, sub_id: str, pkg: Package, *, poll: bool) -> None:
        """Move a Creating package on once its download finished, the import latency passed and (for a client's
        GET, ``poll``) that client has seen Creating at least once."""
        if pkg.provisioning_state != "Creating":
            return
        if pkg.fetched is None:
            self.fetch_package(sub_id, pkg)
        elif self.world.clock() >= pkg.ready_at and (pkg.polls >= 1 or not poll):
            if "error" in pkg.fetched:
                pkg.provisioning_state, pkg.error = "Failed", dict(pkg.fetched["error"])
            else:
                pkg.provisioning_state, pkg.size_in_bytes = "Succeeded", int(pkg.fetched["size"])
            pkg.modified = self.world.clock()
            self.world.dirty = True
        if poll:
            pkg.polls += 1

    def _fetch_thread(self, sub_id: str, key: str, version: float, link: dict[str, Any], filename: str) -> None:
        try:
            outcome = self._download(link, filename)
        except Exception as e:  # never leave a package Creating forever because of an armsim bug
            traceback.print_exc()
            outcome = {"error": {"code": "InternalError", "message": f"armsim could not import the package: {e}"}}
        with self.world.lock:
            self._fetching.discard(key)
            sub = self.world.subscriptions.get(sub_id.lower())
            pkg = sub.automation.packages.get(key) if sub else None
            if pkg is not None and pkg.modified == version and pkg.fetched is None:
                pkg.fetched = outcome
                self.world.dirty = True

    def _download(self, link: dict[str, Any], filename: str) -> dict[str, Any]:
        problem = wheel_problem(filename)
        if problem:
            return {"error": {"code": "UnsupportedPackage", "message": problem}}
        content_hash = link.get("contentHash") or {}
        algorithm = str(content_hash.get("algorithm", "sha256")).lower().replace("-", "")
        if algorithm != "sha256":
            return {"error": {"code": "UnsupportedHashAlgorithm", "message":
                              f"Hash algorithm '{content_hash.get('algorithm')}' is not supported; use SHA256."}}
        try:
            data = self._get(link["uri"])
        except (OSError, ValueError, urllib.error.URLError) as e:
            return {"error": {"code": "ContentDownloadFailed",
                              "message": f"Could not download the package from '{link['uri']}': {e}"}}
        digest = hashlib.sha256(data).hexdigest()
        wanted = str(content_hash.get("value", "")).lower()
        if wanted and wanted != digest:
            return {"error": {"code": "ContentHashMismatch", "message":
                              f"The SHA256 hash of the downloaded content ({digest.upper()}) does not match "
                              f"contentHash ({wanted.upper()})."}}
        if not zipfile.is_zipfile(io.BytesIO(data)):
            return {"error": {"code": "UnsupportedPackage", "message": f"'{filename}' is not a valid wheel archive."}}
        store = self.root / "wheels"
        store.mkdir(parents=True, exist_ok=True)
        target = store / f"{digest}.whl"
        if not target.exists():
            tmp = store / f".{digest}.{secrets.token_hex(4)}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return {"file": target.name, "sha256": digest, "size": len(data)}

    def _get(self, uri: str) -> bytes:
        ctx = ssl.create_default_context()
        for bundle in (self.ca_bundle, self.world.config.package_ca_bundle):
            if bundle and os.path.exists(bundle):
                ctx.load_verify_locations(cafile=bundle)
        req = urllib.request.Request(uri, headers={"User-Agent": "armsim-automation"})
        with urllib.request.urlopen(req, timeout=60, context=ctx) as resp:
            data: bytes = resp.read(PACKAGE_LIMIT + 1)
        if len(data) > PACKAGE_LIMIT:
            raise ValueError("the package is larger than 100 MB")
        return data

    # --- jobs ---------------------------------------------------------------------------------------
    def submit(self, sub_id: str, key: str) -> None:
        """Queue a New job (called under the world lock); a thread runs it when a slot is free."""
        ctl = _JobControl(sub_id, key)
        with self._cv:
            self._jobs[key] = ctl
        threading.Thread(target=self._job_thread, args=(ctl,), name="armsim-automation-job", daemon=True).start()

    def stop(self, key: str) -> bool:
        """Ask a job to stop: a queued one ends Stopped when it would start, a running one gets SIGTERM."""
        with self._cv:
            ctl = self._jobs.get(key)
            if ctl is None:
                return False
            ctl.stop_requested = True
            self._signal(ctl, signal.SIGTERM)
            self._cv.notify_all()
            return True

    def wait(self, key: str, timeout: float) -> bool:
        """Block (without the world lock) until the job's runner finished; True if it did in time."""
        with self._cv:
            ctl = self._jobs.get(key)
        return True if ctl is None else ctl.done.wait(timeout)

    @staticmethod
    def _signal(ctl: _JobControl, sig: signal.Signals) -> None:
        if ctl.proc is not None and ctl.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(ctl.proc.pid, sig)

    def _job_thread(self, ctl: _JobControl) -> None:
        try:
            if self._acquire_slot(ctl):
                try:
                    self._run(ctl)
                finally:
                    with self._cv:
                        self._running -= 1
                        self._cv.notify_all()
            elif ctl.stop_requested and not ctl.cancelled:
                self._finish(ctl, "Stopped", None)
        except Exception as e:
            traceback.print_exc()
            self._record(ctl, "Error", f"armsim sandbox error: {e}")
            self._finish(ctl, "Failed", f"armsim sandbox error: {e}")
        finally:
            with self._cv:
                if self._jobs.get(ctl.key) is ctl:
                    del self._jobs[ctl.key]
            ctl.done.set()

    def _acquire_slot(self, ctl: _JobControl) -> bool:
        with self._cv:
            while self._running >= max(1, self.world.config.sandbox_max_jobs):
                if ctl.stop_requested or ctl.cancelled or self._stop.is_set():
                    return False
                self._cv.wait(0.5)
            if ctl.stop_requested or ctl.cancelled or self._stop.is_set():
                return False
            self._running += 1
            return True

    def _with_job(self, ctl: _JobControl, fn: Callable[[Subscription, Job], Any]) -> Any:
        """Run ``fn`` on the job under the world lock; None if the job is gone (reset, account deleted)."""
        with self.world.lock:
            if ctl.cancelled:
                return None
            sub = self.world.subscriptions.get(ctl.sub_id.lower())
            job = sub.automation.job_by_key(ctl.key) if sub else None
            if sub is None or job is None:
                ctl.cancelled = True
                self._signal(ctl, signal.SIGKILL)
                return None
            self.world.dirty = True
            return fn(sub, job)

    def _record(self, ctl: _JobControl, stream: str, text: str) -> None:
        def add(sub: Subscription, job: Job) -> None:
            if stream == "Debug" or (stream == "Verbose" and not job.log_verbose):
                return
            job.add_stream(stream, text, self.world.clock())

        self._with_job(ctl, add)

    def _set_status(self, ctl: _JobControl, status: str) -> None:
        def set_(sub: Subscription, job: Job) -> None:
            now = self.world.clock()
            job.set_status(status, now)
            if status == "Running":
                job.start_time = now

        self._with_job(ctl, set_)

    def _finish(self, ctl: _JobControl, status: str, exception: str | None) -> None:
        def end(sub: Subscription, job: Job) -> None:
            now = self.world.clock()
            job.set_status(status, now)
            job.end_time, job.exception = now, exception
            job.provisioning_state = "Failed" if status == "Failed" else "Succeeded"

        self._with_job(ctl, end)

    def _plan(self, ctl: _JobControl) -> _Plan | None:
        def read(sub: Subscription, job: Job) -> _Plan:
            job.set_status("Activating", self.world.clock())
            auto: AutomationState = sub.automation
            acct = auto.accounts.get(job.account_id.lower())
            grant = IdentityGrant(sub.tenant_id)
            if acct is not None:
                grant.system = acct.principal_id if acct.system_assigned else None
                grant.user_assigned = {k: dict(v) for k, v in acct.user_assigned.items()}
            wheels = []
            for pkg in auto.packages_of(job.runtime_environment, job.account_id):
                self.refresh_package(sub.id, pkg, poll=False)
                if pkg.provisioning_state == "Succeeded" and pkg.fetched:
                    wheels.append({"name": pkg.name, "file": pkg.fetched["file"], "sha256": pkg.fetched["sha256"],
                                   "link": dict(pkg.content_link), "filename": pkg.filename})
            return _Plan(job.job_id, job.runbook_name, job.content, [argv_value(v) for v in job.parameters.values()],
                         job.log_verbose, grant, wheels, float(self.world.config.job_time_limit_s),
                         self.world.config.sandbox_python)

        plan: _Plan | None = self._with_job(ctl, read)
        return plan

    def _run(self, ctl: _JobControl) -> None:
        plan = self._plan(ctl)
        if plan is None:
            return
        python = find_python(plan.python)
        if python is None:
            self._record(ctl, "Error", NO_PYTHON)
            self._finish(ctl, "Failed", NO_PYTHON)
            return
        site = self._site(ctl, plan.wheels)
        jobs_dir = self.root / "jobs"
        jobs_dir.mkdir(parents=True, exist_ok=True)
        job_dir = Path(tempfile.mkdtemp(prefix=f"{plan.job_id[:8]}-", dir=jobs_dir))
        secret = secrets.token_hex(24)
        try:
            script = job_dir / f"{plan.runbook}.py"
            script.write_text(plan.content, encoding="utf-8")
            cwd = job_dir / "cwd"
            cwd.mkdir()
            env = self._environment(ctl, plan, site, cwd, secret)
            if self.identity is not None:
                self.identity.grant(secret, plan.grant)
            with self._cv:
                if ctl.stop_requested or ctl.cancelled:
                    start = False
                else:
                    start = True
                    ctl.proc = subprocess.Popen(
                        [python, "-s", "-S", str(script), *plan.argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            if not start:
                if not ctl.cancelled:
                    self._finish(ctl, "Stopped", None)
                return
            self._set_status(ctl, "Running")
            self._supervise(ctl, plan)
        finally:
            if self.identity is not None:
                self.identity.revoke(secret)
            shutil.rmtree(job_dir, ignore_errors=True)

    def _environment(self, ctl: _JobControl, plan: _Plan, site: Path | None, cwd: Path,
                     secret: str) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8",
               "PYTHONNOUSERSITE": "1", "AUTOMATION_JOB_ID": plan.job_id,
               "RUNBOOKS_ARM_ENDPOINT": self.endpoint(), "RUNBOOKS_CA_BUNDLE": self.ca_bundle,
               "AZURE_SUBSCRIPTION_ID": ctl.sub_id, "REQUESTS_CA_BUNDLE": self.ca_bundle,
               "SSL_CERT_FILE": self.ca_bundle}
        if site is not None:
            env["PYTHONPATH"] = str(site)
        if self.identity is not None:
            env.update(IDENTITY_ENDPOINT=self.identity.endpoint, IDENTITY_HEADER=secret)
        return env

    def _supervise(self, ctl: _JobControl, plan: _Plan) -> None:
        proc = ctl.proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        tail: collections.deque[str] = collections.deque()
        readers = [threading.Thread(target=self._pump, args=(ctl, proc.stdout, None), daemon=True),
                   threading.Thread(target=self._pump, args=(ctl, proc.stderr, tail), daemon=True)]
        for r in readers:
            r.start()
        try:
            proc.wait(timeout=max(0.0, plan.time_limit))
        except subprocess.TimeoutExpired:
            ctl.timed_out = True
            self._signal(ctl, signal.SIGTERM)
        if proc.poll() is None:
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal(ctl, signal.SIGKILL)
                proc.wait()
        for r in readers:
            r.join(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever the runbook left behind in its process group
        if ctl.cancelled:
            return
        if ctl.timed_out:
            self._finish(ctl, "Stopped", FAIR_SHARE_EXCEPTION)
        elif ctl.stop_requested:
            self._finish(ctl, "Stopped", None)
        elif proc.returncode == 0:
            self._finish(ctl, "Completed", None)
        else:
            stderr = "".join(tail).strip()
            self._finish(ctl, "Failed", stderr[-STDERR_TAIL:] or f"The runbook exited with code {proc.returncode}.")

    def _pump(self, ctl: _JobControl, pipe: IO[bytes], tail: collections.deque[str] | None) -> None:
        """Turn one pipe's lines into stream records (stderr: Error, and kept for the job's exception)."""
        size = 0
        while True:
            raw = pipe.readline(RECORD_LIMIT + 1)
            if not raw:
                break
            if len(raw) > RECORD_LIMIT and not raw.endswith(b"\n"):
                raw = raw[:RECORD_LIMIT]
                while (rest := pipe.readline(RECORD_LIMIT)) and not rest.endswith(b"\n"):
                    pass  # the record is cut at 1 MiB; drop the rest of the line
            line = raw.decode("utf-8", "ignore")
            if tail is not None:
                tail.append(line)
                size += len(line)
                while size > STDERR_TAIL and len(tail) > 1:
                    size -= len(tail.popleft())
            text = line.strip()
            self._record(ctl, "Error" if tail is not None else classify(text), text)
        pipe.close()

    def _site(self, ctl: _JobControl, wheels: list[dict[str, Any]]) -> Path | None:
        """The runtime environment's wheels unzipped into one directory, shared by jobs with the same set."""
        if not wheels:
            return None
        usable = []
        for w in wheels:
            path = self.root / "wheels" / w["file"]
            if not path.exists():  # the workdir did not survive a restart: fetch the contentLink again
                outcome = self._download(w["link"], w["filename"])
                if "error" in outcome:
                    self._record(ctl, "Warning", f"Package '{w['name']}' is unavailable: "
                                                 f"{outcome['error']['message']}")
                    continue
            usable.append(path)
        key = hashlib.sha256("\n".join(sorted(p.name for p in usable)).encode()).hexdigest()[:24]
        site = self.root / "sites" / key
        with self._site_lock:
            if not site.exists():
                tmp = self.root / "sites" / f".{key}.{secrets.token_hex(4)}"
                tmp.mkdir(parents=True)
                for path in usable:
                    with zipfile.ZipFile(path) as zf:
                        zf.extractall(tmp)
                _flatten_data_dirs(tmp)
                os.replace(tmp, site)
        return site

    # --- schedules ----------------------------------------------------------------------------------
    def _schedule_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with self.world.lock:
                    for sub in list(self.world.subscriptions.values()):
                        fire_due_schedules(sub)
            except Exception:
                traceback.print_exc()


def fire_due_schedules(sub: Subscription) -> list[Job]:
    """Start a job for every job schedule whose schedule has an occurrence due since it last fired
    (missed occurrences collapse into one, as after an outage)."""
    auto = sub.automation
    now_t = sub.world.clock()
    now = datetime.fromtimestamp(now_t, tz=timezone.utc)
    started = []
    for js in list(auto.job_schedules.values()):
        sched = auto.schedules.get(f"{js.account_id}/schedules/{js.schedule_name}".lower())
        if sched is None or not sched.is_enabled or js.fired_until is None:
            continue
        since = parse_time(js.fired_until, "fired_until") + timedelta(microseconds=1)
        expiry = parse_time(sched.expiry_time, "expiryTime") if sched.expiry_time else None
        due = next_run(parse_time(sched.start_time, "startTime"), sched.frequency, sched.interval or 1, since, expiry)
        if due is None or due > now:
            continue
        js.fired_until = now.isoformat()
        try:
            started.append(start_from_job_schedule(sub, js))
        except ArmError as e:  # e.g. the runbook was never published: Azure records no job either
            print(f"armsim: job schedule {js.id} could not start a job: {e.message}")
    return started


def start_from_job_schedule(sub: Subscription, js: JobSchedule) -> Job:
    """Create and submit the job a job schedule starts (the scheduler, or the control API's ``fire``)."""
    auto = sub.automation
    acct = auto.accounts[js.account_id.lower()]
    job = auto.create_job(acct, str(uuid.uuid4()), {"properties": {
        "runbook": {"name": js.runbook_name}, "parameters": dict(js.parameters)}}, started_by="Scheduler")
    submit_job(sub, job)
    return job


def submit_job(sub: Subscription, job: Job) -> None:
    runtime = runtime_for(sub.world)
    if runtime is not None:
        runtime.submit(sub.id, job.id.lower())


def _flatten_data_dirs(site: Path) -> None:
    """Move a wheel's ``*.data/purelib`` and ``*.data/platlib`` contents to the site root, as an installer
    would; scripts and headers are not needed by a runbook."""
    for data_dir in site.glob("*.data"):
        for sub in ("purelib", "platlib"):
            src = data_dir / sub
            if src.is_dir():
                for item in src.iterdir():
                    dest = site / item.name
                    if dest.is_dir() and item.is_dir():
                        shutil.copytree(item, dest, dirs_exist_ok=True)
                    else:
                        shutil.move(str(item), str(dest))
        shutil.rmtree(data_dir, ignore_errors=True)
