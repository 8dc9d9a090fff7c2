"""Credited YooKassa notifications per second, against a bare aiohttp handler.

    .venv/bin/python bench/webhook.py [--payments 2000] [--concurrency 16] [--bare 20000]

Every process is its own: the web server (``python -m web``), the YooKassa and Telegram
emulators, a bare aiohttp app answering 200, and this load generator (an aiohttp client with
N concurrent connections). Each webhook request is a distinct, really paid payment: the
server re-fetches it from the YooKassa emulator (the SDK in a thread), credits it in one
PostgreSQL transaction, commits, answers 200, and sends the user a Telegram message. The
bare handler gets the same bodies from the same generator in the same run, as the baseline.

The web server issue set a goal of 0.3 for the ratio of the two rates. It is printed with
the goal, and it is far from it: a webhook that re-fetches the payment over HTTP and commits
a transaction cannot come near a bare handler (DESIGN.md says as much), so what is judged
besides is its p99 latency, its CPU per notification, and that it never blocks the event
loop. The load average is printed too: it moves every figure here.

The web server's own event-loop lag probe (``medialab_web_event_loop_lag_seconds`` on
/metrics, a 50 ms timer measuring how late it fires) is read before and after the run: a
loop blocked by a synchronous call would show up there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from aiohttp import web  # noqa: E402
from alembic.config import Config  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from alembic import command  # noqa: E402
from sandbox._common import free_port  # noqa: E402

ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DB = "medialab_bench_webhook"
SHOP_ID = "100500"
SECRET_KEY = "bench_secret_key"
TOKEN = "777000:bench-webhook-token"
PYTHON = sys.executable


def db_url() -> str:
    return f"{ADMIN.rsplit('/', 1)[0]}/{DB}"


# --- the servers, each in a process of its own -------------------------------------------


def serve(kind: str, port: int) -> None:
    """Run one of the helper servers (called in a child process)."""
    if kind == "bare":

        async def ok(request: web.Request) -> web.Response:
            await request.read()
            return web.json_response({"status": "ok"})

        from web.metrics import WebMetrics

        metrics = WebMetrics()  # only for the same event-loop lag probe as the web server

        async def render(request: web.Request) -> web.Response:
            return web.Response(body=await metrics.render(None), content_type="text/plain")

        async def probe(app: web.Application):  # type: ignore[no-untyped-def]
            task = asyncio.create_task(metrics.probe_loop_lag())
            yield
            task.cancel()

        app = web.Application()
        app.cleanup_ctx.append(probe)
        app.router.add_post("/yookassa/webhook", ok)
        app.router.add_get("/metrics", render)
    elif kind == "yookassa":
        from sandbox.yookassa import create_app

        app = create_app(shop_id=SHOP_ID, secret_key=SECRET_KEY, auto_notify=False)
    elif kind == "telegram":
        from sandbox.telegram import create_app

        app = create_app()
    else:
        raise SystemExit(f"unknown server {kind}")
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def start(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb") if log else subprocess.PIPE,
        start_new_session=True,
    )


async def wait_ready(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            async with http.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- setup --------------------------------------------------------------------------------


def prepare_database() -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = db_url()
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def drop_database() -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


async def paid_notifications(
    settings, tg_url: str, yk_url: str, count: int, first: int
) -> list[bytes]:  # type: ignore[no-untyped-def]
    """``count`` users who talked to the bot, each with a top-up paid at YooKassa."""
    from billing import accounts
    from billing.db import make_engine, make_sessionmaker
    from billing.payments import start_topup
    from billing.yookassa import YooKassaGateway

    engine = make_engine(settings.DATABASE_URL, pool_size=8)
    sessionmaker = make_sessionmaker(engine)
    gateway = YooKassaGateway(settings)
    bodies: list[bytes] = [b""] * count
    semaphore = asyncio.Semaphore(8)

    async with aiohttp.ClientSession() as http:

        async def one(i: int) -> None:
            telegram_id = first + i
            async with semaphore:
                async with http.post(
                    f"{tg_url}/_emu/send_message",
                    json={"token": TOKEN, "user_id": telegram_id, "text": "/start"},
                ) as resp:
                    assert resp.status == 200, await resp.text()
                async with sessionmaker() as session:
                    user, _ = await accounts.get_or_create_user(
                        session, telegram_id=telegram_id, free_operations=0, language="ru"
                    )
                    await session.commit()
                started = await start_topup(
                    sessionmaker, gateway, settings, user_id=user.id, amount=10_000 + i
                )
                async with http.post(
                    f"{yk_url}/_emu/payments/{started.yookassa_payment_id}/succeed", json={}
                ) as resp:
                    payment = (await resp.json())["payment"]
            body = {"type": "notification", "event": "payment.succeeded", "object": payment}
            bodies[i] = json.dumps(body).encode()

        await asyncio.gather(*(one(i) for i in range(count)))
    await engine.dispose()
    return bodies


# --- the load generator -------------------------------------------------------------------


async def load(url: str, bodies: list[bytes], concurrency: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    outcomes: dict[str, int] = {}
    position = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as http:

        async def worker() -> None:
            nonlocal position
            while position < len(bodies):
                body = bodies[position]
                position += 1
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as resp:
                    payload = await resp.read()
                latencies.append(time.perf_counter() - started)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                try:
                    outcome = json.loads(payload).get("status", "?")
                except ValueError:
                    outcome = "?"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "seconds": seconds,
        "rate": n / seconds,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000,
        "max_ms": latencies[-1] * 1000,
        "statuses": statuses,
        "outcomes": outcomes,
    }


async def lag_histogram(http: aiohttp.ClientSession, url: str) -> tuple[dict[float, float], float]:
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    buckets: dict[float, float] = {}
    worst = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "medialab_web_event_loop_lag_seconds_bucket":
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name == "medialab_web_event_loop_lag_max_seconds":
                worst = sample.value
    return buckets, worst


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lag_summary(before: dict[float, float], after: dict[float, float]) -> dict:
    delta = {le: after[le] - before.get(le, 0.0) for le in after}
    total = delta.get(float("inf"), 0.0)
    bounds = sorted(delta)
    p99 = next((le for le in bounds if delta[le] >= 0.99 * total), float("inf"))
    worst = next((le for le in bounds if delta[le] >= total), float("inf"))
    over_10ms = total - delta.get(0.01, 0.0)
    return {"samples": int(total), "p99_le_s": p99, "max_le_s": worst, "over_10ms": int(over_10ms)}


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on the machine (the server and its backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu_seconds() -> float:
    """This process's CPU time: the load generator's share."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def run(args: argparse.Namespace) -> int:
    from billing.settings import Settings

    load_before = _load()
    await asyncio.to_thread(prepare_database)
    ports = {name: free_port() for name in ("yookassa", "telegram", "web", "bare")}
    yk_url = f"http://127.0.0.1:{ports['yookassa']}"
    tg_url = f"http://127.0.0.1:{ports['telegram']}"
    web_url = f"http://127.0.0.1:{ports['web']}"
    bare_url = f"http://127.0.0.1:{ports['bare']}"
    env = {
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": db_url(),
        "REDIS_URL": REDIS,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": tg_url,
        "YOOKASSA_SHOP_ID": SHOP_ID,
        "YOOKASSA_SECRET_KEY": SECRET_KEY,
        "YOOKASSA_API_URL": f"{yk_url}/v3",
        "YOOKASSA_TRUSTED_NETWORKS": "127.0.0.1/32",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(ports["web"]),
    }
    settings = Settings(_env_file=None, **env)  # type: ignore[arg-type, call-arg]
    procs = {
        name: start(
            [PYTHON, str(Path(__file__).resolve()), "--serve", name, "--port", str(ports[name])]
        )
        for name in ("yookassa", "telegram", "bare")
    }
    web_log = Path(os.environ["BENCH_WEB_LOG"]) if os.environ.get("BENCH_WEB_LOG") else None
    profile = (
        ["-m", "cProfile", "-o", os.environ["BENCH_WEB_PROFILE"]]
        if os.environ.get("BENCH_WEB_PROFILE")
        else []
    )
    procs["web"] = start([PYTHON, *profile, "-m", "web"], env, web_log)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, f"{yk_url}/_emu/payments", procs["yookassa"])
            await wait_ready(http, f"{tg_url}/_emu/bot", procs["telegram"])
            await wait_ready(http, f"{bare_url}/", procs["bare"])
            await wait_ready(http, f"{web_url}/yookassa/health", procs["web"])

            warm = args.concurrency * 4
            print(f"preparing {args.payments + warm} paid top-ups ...", flush=True)
            t0 = time.perf_counter()
            bodies = await paid_notifications(
                settings, tg_url, yk_url, args.payments + warm, first=1_000_000
            )
            print(f"  done in {time.perf_counter() - t0:.1f}s", flush=True)
            warmup, measured = bodies[:warm], bodies[warm:]

            # Same generator, same bodies, same concurrency: first the bare handler.
            await load(f"{bare_url}/yookassa/webhook", warmup, args.concurrency)
            repeats = max(1, args.bare // len(measured))
            bare_before, _ = await lag_histogram(http, bare_url)
            bare_cpu = cpu_seconds(procs["bare"].pid)
            bare_gen = own_cpu_seconds()
            bare = await load(f"{bare_url}/yookassa/webhook", measured * repeats, args.concurrency)
            bare_gen = own_cpu_seconds() - bare_gen
            bare_cpu = cpu_seconds(procs["bare"].pid) - bare_cpu
            bare_after, _ = await lag_histogram(http, bare_url)

            await load(f"{web_url}/yookassa/webhook", warmup, args.concurrency)
            before, _ = await lag_histogram(http, web_url)
            cpu = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
            cpu["postgres"] = postgres_cpu_seconds()
            cpu["generator"] = own_cpu_seconds()
            hook = await load(f"{web_url}/yookassa/webhook", measured, args.concurrency)
            cpu = {name: cpu_seconds(proc.pid) - cpu[name] for name, proc in procs.items()} | {
                "postgres": postgres_cpu_seconds() - cpu["postgres"],
                "generator": own_cpu_seconds() - cpu["generator"],
            }
            after, worst = await lag_histogram(http, web_url)

            # Every user got exactly one message (sent in the background after the commit).
            deadline = time.monotonic() + 120
            while True:
                async with http.get(
                    f"{tg_url}/_emu/calls", params={"method": "sendMessage", "token": TOKEN}
                ) as resp:
                    sent = len((await resp.json())["calls"])
                if sent >= len(bodies) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)

        credited = hook["outcomes"].get("credited", 0)
        with psycopg.connect(db_url()) as conn:
            topups = conn.execute(
                "SELECT count(*) FROM ledger_entries WHERE kind = 'topup'"
            ).fetchone()[0]
        from billing.audit import audit
        from billing.db import make_engine, make_sessionmaker

        async def books() -> list[str]:
            engine = make_engine(db_url(), pool_size=1)
            async with make_sessionmaker(engine)() as session:
                problems = await audit(session)
            await engine.dispose()
            return problems

        problems = await books()
        lag = lag_summary(before, after)
        bare_lag = lag_summary(bare_before, bare_after)
        ratio = (credited / hook["seconds"]) / bare["rate"]

        print()
        print(
            f"concurrency {args.concurrency}, {len(measured)} distinct paid notifications; "
            f"load average {load_before} at the start, {_load()} at the end"
        )
        print(f"{'':>22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
        for name, r in (("bare aiohttp handler", bare), ("webhook (credited)", hook)):
            print(
                f"{name:>22} {r['rate']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                f"{r['max_ms']:8.1f}  {r['statuses']}"
            )
        print(
            f"CPU per request: bare handler {bare_cpu / bare['requests'] * 1000:.2f} ms; "
            f"web server {cpu['web'] / hook['requests'] * 1000:.2f} ms, YooKassa emulator "
            f"{cpu['yookassa'] / hook['requests'] * 1000:.2f} ms, Telegram emulator "
            f"{cpu['telegram'] / hook['requests'] * 1000:.2f} ms (each credited notification)"
        )
        print(
            f"  and PostgreSQL {cpu['postgres'] / hook['requests'] * 1000:.2f} ms, the load "
            f"generator {cpu['generator'] / hook['requests'] * 1000:.2f} ms (bare run: "
            f"{bare_gen / bare['requests'] * 1000:.2f} ms)"
        )
        # What a webhook that cost no CPU at all could reach here: the other parts of a
        # credited notification (the API re-fetch served, the commit, the Telegram message,
        # the request itself) share the same cores.
        others = sum(cpu[name] for name in ("yookassa", "telegram", "postgres", "generator"))
        ceiling = (os.cpu_count() or 1) / (others / hook["requests"])
        print(
            f"ceiling: a web server using no CPU at all could credit at most {ceiling:.0f}/s "
            f"on these {os.cpu_count()} cores, {ceiling / bare['rate']:.3f} of the bare rate"
        )
        print(f"credited per second: {credited / hook['seconds']:.0f} ({credited} credited)")
        print(
            f"webhook: p99 {hook['p99_ms']:.1f} ms, {cpu['web'] / hook['requests'] * 1000:.2f} ms "
            f"of CPU per notification; rate ratio webhook/bare {ratio:.3f} (issue goal >= 0.3: "
            f"{'met' if ratio >= 0.3 else 'not met'})"
        )
        print(
            f"web event loop lag during the run: {lag['samples']} probes, p99 <= "
            f"{lag['p99_le_s'] * 1000:g} ms, max <= {lag['max_le_s'] * 1000:g} ms, "
            f"{lag['over_10ms']} over 10 ms; worst since start {worst * 1000:.1f} ms"
        )
        print(
            f"bare handler's loop lag under its load: {bare_lag['samples']} probes, p99 <= "
            f"{bare_lag['p99_le_s'] * 1000:g} ms, max <= {bare_lag['max_le_s'] * 1000:g} ms, "
            f"{bare_lag['over_10ms']} over 10 ms"
        )
        print(f"telegram messages sent: {sent} of {len(bodies)}; top-up entries: {topups}")
        print(f"ledger audit: {'clean' if not problems else problems[:5]}")
        ok = (
            credited == len(measured)
            and topups == len(bodies)
            and sent == len(bodies)
            and not problems
        )
        return 0 if ok else 1
    finally:
        for proc in procs.values():
            stop(proc)
        drop_database()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bare", type=int, default=20_000, help="requests to the bare handler")
    parser.add_argument(
        "--serve", choices=["bare", "yookassa", "telegram"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
