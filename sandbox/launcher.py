"""``python -m sandbox`` (``make run``): the whole bot on one machine, with or without accounts.

It migrates the database, picks the real services that are configured and local stand-ins
for the rest, starts ``python -m bot``, ``python -m workers`` and ``python -m web`` as child
processes (each in its own process group, logs under ``<state>/logs/``), prints where to
look, and on Ctrl-C / SIGTERM stops every process it started.

What is picked:

- Telegram: ``BOT_TOKEN`` set → the real Bot API; else the Bot API emulator
  (``sandbox/telegram.py``) with the browser chat page (``sandbox/chatpage``) on localhost.
- YooKassa: ``YOOKASSA_SHOP_ID`` + ``YOOKASSA_SECRET_KEY`` set → the real API; else the
  YooKassa emulator (``sandbox/yookassa.py``) whose checkout page posts the notification to
  our web server's ``/yookassa/webhook`` (127.0.0.1 is trusted as a sender in this mode only).
- fal.ai: ``FAL_KEY`` set → the real service; else the fake generator (``sandbox/fal.py``)
  unless ``--no-fake-fal``.
- Database: ``DATABASE_URL`` if set, else a SQLite file ``<state>/media_lab.db``.
- Redis: ``REDIS_URL`` if set and answering; else a local Redis on 127.0.0.1:6379 if it
  answers; else ``redis-server`` on a free port (data in ``<state>/redis``) if installed;
  else fakeredis's TCP server in a child process (nothing kept between runs).

The emulators keep their state under ``<state>/`` too (uploaded files, chats, payments), so a
second run finds the chat, the balance and the payments of the first one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import redis
from pydantic import ValidationError

from billing import redaction
from billing.settings import Settings, load_settings
from sandbox._common import free_port, port_is_free

log = logging.getLogger("sandbox.launcher")

ROOT = Path(__file__).resolve().parent.parent
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
# Credentials the YooKassa and fal emulators accept; they only ever reach local servers.
SANDBOX_SHOP_ID = "100500"
SANDBOX_SECRET_KEY = "test_sandbox_secret_key_local_only"
SANDBOX_FAL_KEY = "sandbox-fal-key-local-only"
LOCAL_SENDERS = ("127.0.0.1/32", "::1/128")
APP_PROCESSES = ("bot", "workers", "web")
DEFAULT_PORTS = {"web": 8080, "telegram": 8081, "yookassa": 8082, "fal": 8083}
NOTIFY_ATTEMPTS = 40  # the YooKassa emulator's deliveries of one notification (see below)
STOP_GRACE_SECONDS = 20.0
PR_SET_PDEATHSIG = 1


class LaunchError(Exception):
    """The sandbox cannot start; the message says why and what to do."""


# ----------------------------------------------------------------------------- options


@dataclass
class Options:
    state_dir: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    fake_fal: bool = True
    ready_timeout: float = 180.0
    stop_grace: float = STOP_GRACE_SECONDS
    chat_user_id: int = 1001
    chat_first_name: str = "Гость"
    chat_language: str = "ru"
    open_browser: bool = False


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run Media Lab (bot + worker + web) locally; emulators stand in for "
        "whatever is not configured.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".sandbox"),
        help="database, emulator state and logs (default: .sandbox)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the local servers bind")
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(
            f"--{name}-port",
            type=int,
            default=port,
            help=f"port of the {name} server (default {port}; 0 = any free; "
            "a busy port is replaced by a free one)",
        )
    parser.add_argument(
        "--no-fake-fal",
        action="store_true",
        help="without FAL_KEY, do not start the fake generator (🎨 is hidden)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=180.0,
        help="seconds to wait for bot, worker and web to come up",
    )
    parser.add_argument(
        "--user-id",
        type=int,
        default=1001,
        help="the Telegram user id the chat page talks as (emulator only)",
    )
    parser.add_argument("--user-name", default="Гость", help="that user's first name")
    parser.add_argument(
        "--language", default="ru", choices=("ru", "en"), help="that user's Telegram language"
    )
    parser.add_argument("--open", action="store_true", help="open the chat page in a browser")
    args = parser.parse_args(argv)
    return Options(
        state_dir=args.state_dir.resolve(),
        host=args.host,
        ports={name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS},
        fake_fal=not args.no_fake_fal,
        ready_timeout=args.ready_timeout,
        chat_user_id=args.user_id,
        chat_first_name=args.user_name,
        chat_language=args.language,
        open_browser=args.open,
    )


# ------------------------------------------------------------------------------ helpers


def pick_port(host: str, wanted: int) -> int:
    """The wanted port if it is free, else any free one (0: any free one)."""
    if wanted and port_is_free(host, wanted):
        return wanted
    return free_port(host)


def redis_answers(url: str, timeout: float = 1.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the launcher dies without cleaning up."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _add_networks(current: str | None, extra: tuple[str, ...]) -> str:
    items = [x.strip() for x in (current or "").replace(";", ",").split(",") if x.strip()]
    for net in extra:
        if net not in items:
            items.append(net)
    return ",".join(items)


# ----------------------------------------------------------------------------- children


class Child:
    """One process we started, in its own process group (so its forks go with it)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logfile:
            header = f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.argv)}\n"
            logfile.write(header.encode())
            logfile.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet at this point
            )

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def group_alive(self) -> bool:
        """The leader has not been reaped, or any process of its group still runs."""
        if self.proc is None:
            return False
        if self.proc.poll() is None:
            return True
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


async def stop_children(children: list[Child], grace: float) -> None:
    """SIGTERM every group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    alive = [c for c in children if c.group_alive()]
    for child in alive:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        alive = [c for c in alive if c.group_alive()]
    for child in alive:
        log.warning("%s did not stop within %.0f s: killing its process group", child.name, grace)
        child.signal_group(signal.SIGKILL)
    for child in children:
        if child.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=5)
            child.signal_group(signal.SIGKILL)  # strays that outlived a clean leader exit


# ----------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What runs where: decided once, printed in the banner, written to run.json."""

    state_dir: Path
    host: str
    database_url: str
    database_note: str
    redis_url: str = ""
    redis_note: str = ""
    telegram: str = "emulator"  # emulator | real
    yookassa: str = "emulator"  # emulator | real
    fal: str = "fake"  # fake | real | off
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"


def _explicit(settings: Settings, name: str) -> bool:
    return name in settings.model_fields_set


class Sandbox:
    def __init__(
        self,
        options: Options,
        *,
        environ: dict[str, str] | None = None,
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.environ = dict(os.environ if environ is None else environ)
        self.out = out or (lambda text: print(text, flush=True))
        self.children: list[Child] = []
        self.helpers: list[Child] = []  # redis-server / fakeredis: stopped last
        self.servers: list[Any] = []  # ServerHandle of the emulators
        self.telegram_app: Any = None
        self.yookassa_app: Any = None
        self.snapshots: list[Any] = []
        self.stop_event = asyncio.Event()
        self.plan: Plan | None = None
        self.worker_name = f"sandbox-{os.getpid()}-{int(time.time())}"

    # ------------------------------------------------------------ decisions
    def load_settings(self) -> Settings:
        try:
            return load_settings()
        except ValidationError as exc:
            raise LaunchError(f"the settings (environment or .env) are invalid:\n{exc}") from None

    def make_plan(self, settings: Settings) -> Plan:
        opts = self.options
        state = opts.state_dir
        if _explicit(settings, "DATABASE_URL"):
            database_url = settings.DATABASE_URL
            note = "from DATABASE_URL"
        else:
            database_url = f"sqlite:///{state / 'media_lab.db'}"
            note = "SQLite file, kept between runs"
        plan = Plan(state_dir=state, host=opts.host, database_url=database_url, database_note=note)
        plan.telegram = "real" if settings.BOT_TOKEN else "emulator"
        plan.yookassa = "real" if settings.yookassa_configured else "emulator"
        if settings.fal_configured:
            plan.fal = "real"
        else:
            plan.fal = "fake" if opts.fake_fal else "off"
        wanted = ["web"]
        if plan.telegram == "emulator":
            wanted.append("telegram")
        if plan.yookassa == "emulator":
            wanted.append("yookassa")
        if plan.fal == "fake":
            wanted.append("fal")
        taken: set[int] = set()
        for name in wanted:
            port = pick_port(opts.host, opts.ports.get(name, 0))
            while port in taken:
                port = free_port(opts.host)
            taken.add(port)
            plan.ports[name] = port
        return plan

    def pick_redis(self, settings: Settings, plan: Plan) -> None:
        if _explicit(settings, "REDIS_URL"):
            if redis_answers(settings.REDIS_URL):
                plan.redis_url, plan.redis_note = settings.REDIS_URL, "from REDIS_URL"
                return
            self.out(f"! REDIS_URL={settings.REDIS_URL} does not answer; looking for another")
        if redis_answers(LOCAL_REDIS_URL):
            plan.redis_url, plan.redis_note = LOCAL_REDIS_URL, "the local Redis server"
            return
        port = free_port("127.0.0.1")
        binary = shutil.which("redis-server")
        if binary:
            data = plan.state_dir / "redis"
            data.mkdir(parents=True, exist_ok=True)
            argv = [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ]
            note = f"redis-server started by the sandbox (data in {data})"
        else:
            argv = [
                sys.executable,
                "-m",
                "sandbox.launcher",
                "serve-fakeredis",
                "--port",
                str(port),
            ]
            note = "embedded fakeredis server (queue and FSM state are not kept between runs)"
        child = Child("redis", argv, self.child_env({}), plan.logs_dir / "redis.log", Path.cwd())
        child.start()
        self.helpers.append(child)
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 30
        while not redis_answers(url, timeout=0.5):
            if child.exit_code() is not None or time.monotonic() > deadline:
                raise LaunchError(f"could not start {argv[0]}:\n{tail(child.log_path)}")
            time.sleep(0.1)
        plan.redis_url, plan.redis_note = url, note

    # ------------------------------------------------------------------ env
    def child_env(self, overrides: dict[str, str]) -> dict[str, str]:
        env = dict(self.environ)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(overrides)
        return env

    def app_env(self, settings: Settings, plan: Plan) -> dict[str, str]:
        env: dict[str, str] = {
            "DATABASE_URL": plan.database_url,
            "REDIS_URL": plan.redis_url,
            "WEB_HOST": plan.host,
            "WEB_PORT": str(plan.ports["web"]),
        }
        web_url = plan.url("web")
        if plan.telegram == "emulator":
            env["TELEGRAM_API_URL"] = plan.url("telegram")
            env["TELEGRAM_WEBHOOK_URL"] = ""  # the emulator is polled by python -m bot
            env["YOOKASSA_RETURN_URL"] = plan.url("telegram") + "/chat"
            # The Mini App from this web server (the chat page opens it in a side panel; a
            # real Telegram would need HTTPS, the emulator takes http).
            env.setdefault("WEBAPP_URL", self.environ.get("WEBAPP_URL") or web_url + "/app/")
        if plan.yookassa == "emulator":
            env.update(
                YOOKASSA_SHOP_ID=SANDBOX_SHOP_ID,
                YOOKASSA_SECRET_KEY=SANDBOX_SECRET_KEY,
                YOOKASSA_API_URL=plan.url("yookassa") + "/v3",
                YOOKASSA_WEBHOOK_URL=web_url + "/yookassa/webhook",
                # The emulator posts notifications from this machine: trust it, here only.
                YOOKASSA_TRUSTED_NETWORKS=_add_networks(
                    self.environ.get("YOOKASSA_TRUSTED_NETWORKS"), LOCAL_SENDERS
                ),
            )
        if plan.fal == "fake":
            env.update(
                FAL_KEY=SANDBOX_FAL_KEY,
                FAL_API_URL=plan.url("fal"),
                # The emulator signs its webhooks with its own key and posts them to web.
                FAL_JWKS_URL=plan.url("fal") + "/.well-known/jwks.json",
                WEB_PUBLIC_URL=web_url,
            )
        elif plan.fal == "off":
            env["FAL_KEY"] = ""
        return self.child_env(env)

    # ------------------------------------------------------------- emulators
    async def start_emulators(self, plan: Plan) -> None:
        from sandbox._common import ServerHandle

        if plan.telegram == "emulator":
            from sandbox import chatpage, snapshot
            from sandbox import telegram as tg

            files = plan.state_dir / "telegram" / "files"
            files.mkdir(parents=True, exist_ok=True)
            app = tg.create_app(files_dir=files)
            store = snapshot.TelegramSnapshot(
                app[tg.EMU_KEY], plan.state_dir / "telegram" / "state.json"
            )
            store.load()
            self.snapshots.append(store)
            chatpage.attach(
                app,
                user_id=self.options.chat_user_id,
                first_name=self.options.chat_first_name,
                language=self.options.chat_language,
                info={
                    "web_url": plan.url("web"),
                    "yookassa": plan.yookassa,
                    "fal": plan.fal,
                },
            )
            self.telegram_app = app
            self.servers.append(await ServerHandle(app, plan.host, plan.ports["telegram"]).start())
        if plan.yookassa == "emulator":
            from sandbox import snapshot
            from sandbox import yookassa as yk

            # YooKassa keeps delivering a notification for 24 hours; here for about half
            # an hour (a web server restarted meanwhile still gets it), a minute apart at most.
            app = yk.create_app(
                shop_id=SANDBOX_SHOP_ID,
                secret_key=SANDBOX_SECRET_KEY,
                public_url=plan.url("yookassa"),
                webhook_url=plan.url("web") + "/yookassa/webhook",
                notify_max_attempts=NOTIFY_ATTEMPTS,
                notify_backoff=0.5,
                notify_max_delay=60.0,
            )
            store = snapshot.YooKassaSnapshot(
                app[yk.EMU_KEY], plan.state_dir / "yookassa" / "state.json"
            )
            store.load()
            self.snapshots.append(store)
            self.yookassa_app = app
            self.servers.append(await ServerHandle(app, plan.host, plan.ports["yookassa"]).start())
        if plan.fal == "fake":
            from sandbox import fal

            app = fal.create_app(key=SANDBOX_FAL_KEY)
            self.servers.append(await ServerHandle(app, plan.host, plan.ports["fal"]).start())

    def save_snapshots(self) -> None:
        for store in self.snapshots:
            try:
                store.save()
            except Exception:  # noqa: BLE001 - a lost snapshot must not block the stop
                log.exception("could not save %s", store.path)

    async def autosave(self) -> None:
        while True:
            await asyncio.sleep(5)
            for store in self.snapshots:
                try:
                    store.save_if_changed()
                except Exception:  # noqa: BLE001
                    log.exception("could not save %s", store.path)

    # ------------------------------------------------------------ processes
    def migrate(self, plan: Plan) -> None:
        child = Child(
            "migrate",
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
            self.child_env({"DATABASE_URL": plan.database_url}),
            plan.logs_dir / "migrate.log",
            ROOT,
        )
        child.start()
        assert child.proc is not None
        code = child.proc.wait()
        if code != 0:
            raise LaunchError(
                f"the migration failed (exit code {code}); "
                f"{child.log_path}:\n{tail(child.log_path)}"
            )

    def start_apps(self, settings: Settings, plan: Plan) -> None:
        env = self.app_env(settings, plan)
        commands: dict[str, list[str]] = {
            "web": [sys.executable, "-m", "web"],
            "workers": [sys.executable, "-m", "workers", "--name", self.worker_name],
            "bot": [sys.executable, "-m", "bot"],
        }
        if plan.telegram == "real" and settings.TELEGRAM_WEBHOOK_URL:
            # Webhook mode: the web server runs the dispatcher; python -m bot would refuse.
            del commands["bot"]
        for name, argv in commands.items():
            child = Child(name, argv, env, plan.logs_dir / f"{name}.log", Path.cwd())
            child.start()
            self.children.append(child)

    def crashed(self) -> Child | None:
        for child in self.children + self.helpers:
            if child.exit_code() is not None:
                return child
        return None

    async def wait_ready(self, plan: Plan) -> list[str]:
        """Wait until web answers /healthz, the worker is registered and the bot polls."""
        pending = {"web", "workers"} | (
            {"bot"} if any(c.name == "bot" for c in self.children) else set()
        )
        deadline = time.monotonic() + self.options.ready_timeout
        conn = redis.Redis.from_url(plan.redis_url, socket_timeout=3, socket_connect_timeout=3)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
            while pending and time.monotonic() < deadline and not self.stop_event.is_set():
                bad = self.crashed()
                if bad is not None:
                    raise LaunchError(self.crash_report(bad))
                if "web" in pending:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                        async with http.get(plan.url("web") + "/healthz") as resp:
                            if resp.status == 200:
                                pending.discard("web")
                if "workers" in pending:
                    with contextlib.suppress(redis.RedisError, OSError):
                        key = f"rq:worker:{self.worker_name}"
                        if await asyncio.to_thread(conn.exists, key):
                            pending.discard("workers")
                if "bot" in pending and self.bot_is_polling(plan):
                    pending.discard("bot")
                await asyncio.sleep(0.2)
        conn.close()
        return sorted(pending)

    def bot_is_polling(self, plan: Plan) -> bool:
        if plan.telegram != "emulator":
            bot = next(c for c in self.children if c.name == "bot")
            return bot.exit_code() is None  # nothing to observe: alive is all we can say
        from sandbox import telegram as tg

        emu = self.telegram_app[tg.EMU_KEY]
        return any(call["method"] == "getUpdates" for call in list(emu.calls))

    def crash_report(self, child: Child) -> str:
        return (
            f"{child.name} stopped unexpectedly (exit code {child.exit_code()}); "
            f"the end of {child.log_path}:\n{tail(child.log_path)}"
        )

    # --------------------------------------------------------------- output
    def run_info(self, plan: Plan) -> dict[str, Any]:
        info: dict[str, Any] = {
            "pid": os.getpid(),
            "state_dir": str(plan.state_dir),
            "web_url": plan.url("web"),
            "database_url": plan.database_url,
            "redis_url": plan.redis_url,
            "telegram": plan.telegram,
            "yookassa": plan.yookassa,
            "fal": plan.fal,
            "logs": {c.name: str(c.log_path) for c in self.children + self.helpers},
            "processes": {c.name: c.pid for c in self.children + self.helpers},
        }
        if plan.telegram == "emulator":
            info["telegram_url"] = plan.url("telegram")
            info["chat_url"] = plan.url("telegram") + "/chat"
            info["chat_user_id"] = self.options.chat_user_id
        if plan.yookassa == "emulator":
            info["yookassa_url"] = plan.url("yookassa")
        if plan.fal == "fake":
            info["fal_url"] = plan.url("fal")
        return info

    def banner(self, plan: Plan, not_ready: list[str]) -> str:
        rel = _pretty(plan.logs_dir)
        lines = ["", "Media Lab sandbox is running.", ""]
        if plan.telegram == "emulator":
            lines.append(
                f"  Chat with the bot:  {plan.url('telegram')}/chat   <- open this in a browser"
            )
            lines.append(
                "                      (a local Telegram Bot API emulator; no account needed)"
            )
        else:
            lines.append(
                "  Telegram:           the real Bot API (BOT_TOKEN) - write to your "
                "bot in Telegram"
            )
        lines.append(
            f"  Web server:         {plan.url('web')}   (/healthz, /metrics, /yookassa/webhook)"
        )
        if plan.yookassa == "emulator":
            lines.append(
                f"  YooKassa:           local emulator at {plan.url('yookassa')} - "
                '"💳 Перейти к оплате" opens its'
            )
            lines.append("                      checkout page; test payments, no money moves")
        else:
            lines.append(
                "  YooKassa:           the real API (YOOKASSA_SHOP_ID); "
                "notifications reach this machine only"
            )
            lines.append(
                "                      if YooKassa can reach /yookassa/webhook (see README)"
            )
        if plan.fal == "fake":
            lines.append(
                "  🎨 Создать:          FAKE image generator (sandbox/fal.py draws a "
                "gradient with the prompt),"
            )
            lines.append(
                "                      not a neural network - set FAL_KEY for real fal.ai"
            )
        elif plan.fal == "real":
            lines.append("  🎨 Создать:          fal.ai (FAL_KEY)")
        else:
            lines.append("  🎨 Создать:          off (no FAL_KEY, --no-fake-fal)")
        lines.append(f"  Database:           {plan.database_url}  ({plan.database_note})")
        lines.append(f"  Redis:              {plan.redis_url}  ({plan.redis_note})")
        lines.append(f"  Logs:               {rel}/{{bot,workers,web,sandbox}}.log")
        lines.append(
            f"  Books:              DATABASE_URL={plan.database_url} python -m billing audit"
        )
        if not_ready:
            lines.append("")
            lines.append(f"  ! not ready yet: {', '.join(not_ready)} - see their logs")
        lines += ["", "Press Ctrl-C to stop everything.", ""]
        return "\n".join(lines)

    # ---------------------------------------------------------------- main
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        autosave: asyncio.Task | None = None
        code = 0
        try:
            settings = self.load_settings()
            redaction.install(settings)  # the real services' secrets, when they are set
            plan = self.plan = self.make_plan(settings)
            plan.logs_dir.mkdir(parents=True, exist_ok=True)
            self.out(f"Media Lab sandbox: state in {_pretty(plan.state_dir)}")
            # Blocking on purpose: no server runs yet, and Popen's preexec_fn is only safe
            # while this process has a single thread.
            self.pick_redis(settings, plan)
            self.out(f"  redis: {plan.redis_url} ({plan.redis_note})")
            self.out(f"  migrating {plan.database_url} ...")
            self.migrate(plan)
            await self.start_emulators(plan)
            if self.stop_event.is_set():  # Ctrl-C while migrating
                return 130
            autosave = asyncio.create_task(self.autosave())
            self.out("  starting bot, workers and web ...")
            self.start_apps(settings, plan)
            not_ready = await self.wait_ready(plan)
            if self.stop_event.is_set():
                return 130
            info = self.run_info(plan)
            (plan.state_dir / "run.json").write_text(json.dumps(info, indent=2))
            self.out(self.banner(plan, not_ready))
            if self.options.open_browser and plan.telegram == "emulator":
                import webbrowser

                webbrowser.open(info["chat_url"])
            while not self.stop_event.is_set():
                bad = self.crashed()
                if bad is not None:
                    self.out("\n✖ " + self.crash_report(bad))
                    code = 1
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), 0.5)
        except LaunchError as exc:
            self.out(f"\n✖ Cannot start the sandbox: {exc}")
            code = 1
        finally:
            if autosave is not None:
                autosave.cancel()
            await self.shutdown()
        return code

    def _on_signal(self) -> None:
        if self.stop_event.is_set():  # second Ctrl-C: no more waiting
            for child in self.children + self.helpers:
                child.signal_group(signal.SIGKILL)
            return
        self.stop_event.set()

    async def shutdown(self) -> None:
        if self.children or self.helpers or self.servers:
            self.out("Stopping: bot, workers, web ...")
        await stop_children(self.children, self.options.stop_grace)
        self.save_snapshots()
        for server in reversed(self.servers):
            with contextlib.suppress(Exception):
                await server.stop()
        self.servers.clear()
        await stop_children(self.helpers, 10.0)
        if self.plan is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.plan.state_dir / "run.json").unlink()
        if self.children or self.helpers:
            self.out(
                "Stopped. Everything is kept in "
                f"{_pretty(self.plan.state_dir) if self.plan else 'the state dir'}; "
                "run again to continue."
            )


def _pretty(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _setup_logging(state_dir: Path) -> None:
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / "sandbox.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def serve_fakeredis(argv: list[str]) -> int:
    """``python -m sandbox.launcher serve-fakeredis --port N``: fakeredis over TCP."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.launcher serve-fakeredis")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from fakeredis import TcpFakeServer
    from fakeredis._clients._tcp_server import TCPFakeRequestHandler

    class KeepOpenHandler(TCPFakeRequestHandler):
        """fakeredis's TCP handler closes a connection after any error reply. A real Redis
        answers the error and goes on: RQ sends INFO (which fakeredis does not know), expects
        the error, and then uses the same connection for its enqueue transaction."""

        def setup(self) -> None:
            super().setup()
            read = self.current_client.read_response

            def read_response(*args: object, **kwargs: object) -> object:
                try:
                    return read(*args, **kwargs)
                except redis.ResponseError as exc:
                    return exc  # written as "-ERR ..." and the connection stays open

            self.current_client.read_response = read_response  # type: ignore[method-assign]

    server = TcpFakeServer((args.host, args.port))
    server.RequestHandlerClass = KeepOpenHandler

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"fakeredis listening on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server._shutdown_event.set()  # noqa: SLF001 - ends the client handler loops
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve-fakeredis"]:
        return serve_fakeredis(argv[1:])
    options = parse_args(argv)
    if urlsplit(f"//{options.host}").hostname is None:
        print(f"bad --host {options.host!r}", file=sys.stderr)
        return 2
    _setup_logging(options.state_dir)
    return asyncio.run(Sandbox(options).run())


if __name__ == "__main__":
    raise SystemExit(main())
