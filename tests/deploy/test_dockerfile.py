"""The Dockerfile: slim Python, dependencies cached in their own layer, a non-root user,
and nothing secret or local in the build context."""

from __future__ import annotations

import re
import tomllib

from tests.deploy.helpers import DOCKERFILE, DOCKERIGNORE, ROOT


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_slim_python_of_the_projects_version() -> None:
    (base,) = [rest for kw, rest in _instructions() if kw == "FROM"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim(-\w+)?", base)
    assert match, base
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(x) for x in required.lstrip(">=").split("."))
    assert (int(match.group(1)), int(match.group(2))) >= minimum


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    steps = _instructions()
    copy_project = next(
        i
        for i, (kw, rest) in enumerate(steps)
        if kw == "COPY" and rest.startswith("pyproject.toml")
    )
    install_deps = next(
        i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "pip install ." in rest
    )
    copy_code = next(i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and rest == ". .")
    assert copy_project < install_deps < copy_code
    # the code's own install does not re-resolve dependencies
    assert any(kw == "RUN" and "pip install --no-deps ." in rest for kw, rest in steps[copy_code:])


def test_the_processes_run_as_a_user_that_is_not_root() -> None:
    users = [rest for kw, rest in _instructions() if kw == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(
        kw == "RUN" and "useradd" in rest and users[-1] in rest for kw, rest in _instructions()
    )


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", ".sandbox", "*.db"} <= ignored
    assert "README.md" not in ignored  # pyproject's readme: needed by pip install .
    # what the image runs is in the context
    for needed in ("alembic", "alembic.ini", "billing", "bot", "workers", "web"):
        assert needed not in ignored and (ROOT / needed).exists(), needed
