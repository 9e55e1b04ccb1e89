"""``rca-runbooks`` (and ``python -m tasks``): the tasks as a command that works from any folder, installed by
pip with the distribution. ``invoke`` from the repository root runs the same collection."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from invoke import Program

from tasks import ns, quiet_broken_pipe


def main() -> None:
    quiet_broken_pipe()
    try:
        release = version("azure-rca-runbooks")
    except PackageNotFoundError:  # run from a checkout that was not installed
        release = "unknown"
    Program(namespace=ns, name="rca-runbooks", binary="rca-runbooks", version=release).run()


if __name__ == "__main__":
    main()
