"""The sandbox is a development tool: its own dependencies are an extra that `make run` and
`make test` install, never a production dependency, and no process needs them."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.deploy.helpers import DOCKERIGNORE, ROOT

SANDBOX_ONLY = ("fakeredis",)


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {
        req.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
        for req in requirements
    }


def test_the_sandbox_dependencies_are_an_extra_not_a_production_dependency() -> None:
    project = _project()
    assert not _names(project["dependencies"]) & set(SANDBOX_ONLY)
    assert set(SANDBOX_ONLY) <= _names(project["optional-dependencies"]["sandbox"])


def test_make_run_and_make_test_install_the_sandbox_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q -e '.[sandbox,test]'" in makefile


def test_the_image_leaves_the_sandbox_out() -> None:
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert "sandbox" in ignored


def test_the_processes_start_without_the_sandbox_or_its_dependencies() -> None:
    # Importing each entry point with the sandbox and its packages made unimportable: what
    # the image (main dependencies only, no sandbox/) can run.
    script = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {("sandbox", *SANDBOX_ONLY)!r}:
            raise ImportError("not in the image: " + name)
sys.meta_path.insert(0, Refuse())
import bot.__main__, workers.__main__, web.__main__, billing.__main__
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
