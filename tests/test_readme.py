"""README.md's commands run as written after ./install.sh, and installs are locked.

Every ``.venv/bin/livematte ...`` line in the README's bash blocks is run (with this interpreter,
from a scratch folder that sees the repository's ``livematte/samples``), except the ones that
never end by themselves (``serve``) or need the internet (``models pull``); the server's own
commands are exercised by tests/server. A bare ``livematte`` line fails the test: after the
install nothing puts it on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
NOT_RUN = ("serve", "models pull")


def _bash_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line:
                lines.append(line)
    return lines


def _commands() -> list[str]:
    """The livematte command lines, in README order (``VAR=$(...)`` captures included)."""
    prefix = ".venv/bin/livematte "
    found = []
    for line in _bash_lines():
        capture = re.fullmatch(r"\w+=\$\((.*)\)", line)
        if capture:
            line = capture[1]
        if line.startswith(prefix) and not line[len(prefix) :].startswith(NOT_RUN):
            found.append(line[len(prefix) :])
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One folder for every command, run in order as a reader typing them would (a key that
    one line creates is topped up by a later one)."""
    path = tmp_path_factory.mktemp("readme")
    (path / "livematte").symlink_to(REPO / "livematte")
    return path


def test_readme_names_the_install_and_test_commands_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    assert "./install.sh" in _bash_lines() and "./install.sh" in ci
    assert ".venv/bin/python -m pytest" in _bash_lines() and ".venv/bin/python -m pytest" in ci


def test_no_bare_livematte_command():
    bare = [line for line in _bash_lines() if re.match(r"(\w+=\$\()?livematte ", line)]
    assert not bare, f"not on PATH after ./install.sh, say .venv/bin/livematte: {bare}"


@pytest.mark.parametrize("command", _commands())
def test_readme_command_runs_as_written(command, workdir):
    env = {
        **os.environ,
        "HOME": str(workdir / "home"),
        "XDG_CACHE_HOME": str(workdir / "cache"),
        "XDG_DATA_HOME": str(workdir / "data"),
    }
    for name in ("LIVEMATTE_CACHE", "LIVEMATTE_KEYS_DB", "LIVEMATTE_MODELS"):
        env.pop(name, None)
    run = subprocess.run(
        [sys.executable, "-m", "livematte", *shlex.split(command)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, f"{command}\n{run.stderr[-2000:]}"


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements-lock.txt").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m[1]).lower()] = m[2]
    return pins


def test_every_dependency_is_locked():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("cpu", "server", "ray", "test"):
        wanted += project["optional-dependencies"][extra]
    pins = _locked()
    for req in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", req)[0]).lower()
        assert name in pins, f"{name} (pyproject.toml) is not pinned in requirements-lock.txt"


@pytest.mark.skipif(
    os.environ.get("LIVEMATTE_UNLOCKED") == "1", reason="scripts/check_latest.sh: newest versions"
)
def test_installed_versions_are_the_locked_ones():
    pins = _locked()
    wrong = []
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if name in pins and dist.version != pins[name]:
            wrong.append(f"{name} {dist.version} (locked {pins[name]})")
    assert not wrong, "installed versions differ from requirements-lock.txt: " + ", ".join(wrong)
