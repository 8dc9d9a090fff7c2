"""Fixtures for the sandbox run command and the browser chat page: headless Chromium
(Debian's /usr/bin/chromium driven by Playwright; never a downloaded browser)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium; a missing browser fails the test (it is never skipped)."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): install Debian's package with "
            "`apt-get install -y chromium` (CI's .ci/run does), or point CHROMIUM_PATH at one. "
            "The browser tests never download a browser.",
            pytrace=False,
        )
    return path


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def photo_path() -> Path:
    return FIXTURES / "astronaut.jpg"


@pytest.fixture
def photo2_path() -> Path:
    return FIXTURES / "hopper.jpg"


@pytest.fixture
def png_path() -> Path:
    return FIXTURES / "chelsea.png"


class SandboxRun:
    """``python -m sandbox`` as a child process in a temp dir, on free ports."""

    def __init__(self, state_dir: Path, env: dict[str, str], args: list[str] | None = None):
        self.state_dir = state_dir
        self.env = env
        self.args = args or []
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict = {}
        self.output_path = state_dir.parent / f"{state_dir.name}-launcher.out"

    def start(self, timeout: float = 300.0) -> dict:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        run_json = self.state_dir / "run.json"
        run_json.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "sandbox",
            "--state-dir",
            str(self.state_dir),
            "--web-port",
            "0",
            "--telegram-port",
            "0",
            "--yookassa-port",
            "0",
            "--fal-port",
            "0",
            *self.args,
        ]
        out = open(self.output_path, "a")  # noqa: SIM115 - closed by the child's exit
        self.proc = subprocess.Popen(
            argv,
            cwd=self.state_dir.parent,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the sandbox exited with {self.proc.returncode}:\n{self.output()}")
            if run_json.exists():
                try:
                    info = json.loads(run_json.read_text())
                except ValueError:
                    info = {}
                if info.get("pid") == self.proc.pid:
                    self.info = info
                    return info
            time.sleep(0.2)
        pytest.fail(f"the sandbox did not come up within {timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.output_path.read_text()
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the sandbox did not stop within {timeout:.0f} s:\n{self.output()}")

    def kill_everything(self) -> None:
        """Teardown safety net: whatever is left of this run goes."""
        groups = [self.proc.pid] if self.proc else []
        groups += [pid for pid in self.info.get("processes", {}).values() if pid]
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------ the chat page, as a person uses it
WAIT = 180_000  # ms: an upper bound on each condition of the stack tests; nothing sleeps


def bot_messages(page: Any, text: str | None = None) -> Any:
    found = page.locator("[data-testid=message][data-from=bot]")
    return found.filter(has_text=text) if text else found


async def press(page: Any, message_text: str, button: str) -> None:
    """Press an inline button on the newest bot message that says ``message_text``."""
    message = bot_messages(page, message_text).last
    await message.wait_for(timeout=WAIT)
    await message.get_by_test_id("inline-button").filter(has_text=button).click()


async def send_photo(page: Any, path: Path) -> None:
    await page.get_by_test_id("file-input").set_input_files(str(path))
    await page.get_by_test_id("attachment").wait_for(timeout=WAIT)
    await page.get_by_test_id("send").click()
    await page.get_by_test_id("attachments").wait_for(state="hidden", timeout=WAIT)


def sandbox_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a newcomer's shell: no tokens, no DATABASE_URL; Redis is the test
    run's own database (so the shared one's db 0 is left alone)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "YOOKASSA_", "FAL_", "TELEGRAM_", "DATABASE_", "WEB_"))
    }
    env.update(REDIS_URL=redis_url, PYTHONPATH=str(ROOT), LOG_LEVEL="INFO", **extra)
    return env


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., SandboxRun]]:
    runs: list[SandboxRun] = []

    def make(
        state: str = "state", env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> SandboxRun:
        run = SandboxRun(tmp_path / state, env or {}, args)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.kill_everything()
