"""The wheel set an Automation runtime environment needs: Linux x86_64, CPython 3.10, every transitive
dependency (the service installs each uploaded wheel as is and resolves nothing — a missing one shows up
only as a ModuleNotFoundError in a job).

The toolkit is built as a ``py3-none-any`` wheel (playbooks and runbook scripts inside); its runtime
requirements — the distribution's requirements minus what only the CLI and the emulator use — are fetched with
``pip download`` for the sandbox's platform. Each wheel's tags are checked against what the sandbox accepts.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from runbooks.errors import UsageError

DISTRIBUTION = "azure-rca-runbooks"
# Needed by tasks.py and armsim only; the runbooks run without them.
NOT_IN_SANDBOX = {"invoke", "rich", "trustme", "packaging"}
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
SIZE_LIMIT = 100 * 1024 * 1024  # the service's limit on what one account imports
MANIFEST = "manifest.json"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
# Automation runbook name → its script in scripts/ and what it does.
RUNBOOKS = {
    "Sweep-VMs": ("sweep_vms.py", "Find VMs in a state a playbook covers; report or remediate them"),
    "Remediate-VM": ("remediate_vm.py", "Plan or apply the remediation of one VM (any playbook)"),
}


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Script:
    runbook: str
    file: str
    sha256: str


@dataclass
class WheelSet:
    """The built folder: wheels and runbook scripts (``runbooks/``), listed with hashes in ``manifest.json``."""

    directory: Path
    python_version: str
    wheels: list[Wheel]
    scripts: list[Script]

    @property
    def size(self) -> int:
        return sum(w.size for w in self.wheels)

    def to_dict(self) -> dict[str, object]:
        return {"python_version": self.python_version, "size": self.size, "wheels": [asdict(w) for w in self.wheels],
                "scripts": [asdict(s) for s in self.scripts]}

    def script_text(self, runbook: str) -> str:
        script = next(s for s in self.scripts if s.runbook == runbook)
        return (self.directory / script.file).read_text()

    def save(self) -> Path:
        path = self.directory / MANIFEST
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> WheelSet:
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text())
            return cls(directory, str(data["python_version"]), [Wheel(**w) for w in data["wheels"]],
                       [Script(**s) for s in data["scripts"]])
        except FileNotFoundError:
            raise UsageError(f"{directory} has no {MANIFEST}: build it with `invoke automation.package`") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UsageError(f"{path} is not a wheel-set manifest ({e})") from None

    def verify(self) -> None:
        """Every file listed is present with its recorded hash."""
        files: list[Wheel | Script] = [*self.wheels, *self.scripts]
        for w in files:
            path = self.directory / w.file
            if not path.is_file() or sha256(path) != w.sha256:
                raise UsageError(f"{path} is missing or changed since the wheel set was built; rebuild it")


def repo_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise UsageError("packaging needs the project's source checkout (pyproject.toml not found)")
    return root


def runtime_requirements() -> list[str]:
    """The distribution's requirements a job needs (no extras, nothing CLI- or emulator-only)."""
    try:
        declared = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise UsageError(f"{DISTRIBUTION} is not installed: pip install -e . first") from None
    out = []
    for text in declared:
        req = Requirement(text)
        if req.marker is not None and "extra" in str(req.marker):
            continue
        if canonicalize_name(req.name) not in NOT_IN_SANDBOX:
            out.append(str(req))
    return out


def sandbox_accepts(filename: str, python_version: str = "3.10") -> bool:
    """Would the Linux x86_64 CPython sandbox load this wheel? (cp3X / abi3 / none; manylinux x86_64 / any)"""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    cp = "cp" + python_version.replace(".", "")
    for tag in tags:
        python_ok = tag.interpreter in (cp, "py3", "py" + python_version.replace(".", "")) or (
            tag.abi == "abi3" and tag.interpreter.startswith("cp3")
            and int(tag.interpreter[3:] or 0) <= int(python_version.split(".")[1]))
        abi_ok = tag.abi in (cp, "abi3", "none")
        platform_ok = tag.platform == "any" or (tag.platform.startswith("manylinux") and
                                                tag.platform.endswith("x86_64"))
        if python_ok and abi_ok and platform_ok:
            return True
    return False


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip(args: list[str], what: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UsageError(f"{what} failed: {tail}")


def build(out: Path, *, python_version: str = "3.10", progress: Callable[[str], None] = print) -> WheelSet:
    """Build the toolkit wheel and download its runtime closure for the sandbox into ``out``."""
    if not python_version.startswith("3.") or not python_version[2:].isdigit():
        raise UsageError(f"python version must look like 3.10 (got {python_version})")
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).is_file():  # a previous build: replace exactly what it wrote
        for old in WheelSet.load(out).wheels:
            (out / old.file).unlink(missing_ok=True)
    elif any(out.iterdir()):
        raise UsageError(f"{out} is not empty and holds no wheel set: choose an empty or new folder")
    progress(f"building the {DISTRIBUTION} wheel")
    _pip(["wheel", "--no-deps", "--quiet", "-w", str(out), str(repo_root())], "building the toolkit wheel")
    reqs = runtime_requirements()
    progress(f"downloading {len(reqs)} requirements and their dependencies for CPython {python_version} "
        "manylinux x86_64")
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    abi = "cp" + python_version.replace(".", "")
    _pip(["download", "--quiet", "--only-binary=:all:", *platforms, "--python-version", python_version,
          "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none", "-d", str(out), *reqs],
         "downloading the dependency wheels")
    wheels = []
    for path in sorted(out.glob("*.whl")):
        if not sandbox_accepts(path.name, python_version):
            raise UsageError(f"{path.name} would not load in the sandbox (CPython {python_version}, Linux x86_64)")
        name, version, _, _ = parse_wheel_filename(path.name)
        wheels.append(Wheel(str(name), str(version), path.name, sha256(path), path.stat().st_size))
    found = {w.name for w in wheels}
    missing = [r for r in reqs if canonicalize_name(Requirement(r).name) not in found]
    if missing or canonicalize_name(DISTRIBUTION) not in found:
        raise UsageError(f"the wheel set lacks {', '.join(missing) or DISTRIBUTION}")
    scripts = []
    (out / "runbooks").mkdir(exist_ok=True)
    for runbook, (file, _) in RUNBOOKS.items():
        target = out / "runbooks" / file
        target.write_text((SCRIPTS / file).read_text())
        scripts.append(Script(runbook, f"runbooks/{file}", sha256(target)))
    wheel_set = WheelSet(out, python_version, wheels, scripts)
    if wheel_set.size > SIZE_LIMIT:
        raise UsageError(f"the wheel set is {wheel_set.size / 2**20:.1f} MiB; Automation imports at most 100 MiB")
    wheel_set.save()
    return wheel_set
