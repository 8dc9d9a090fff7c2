"""Prometheus metrics: the money from the database, the requests from this process.

The bot, the workers and the web server are separate processes (and may run as several
replicas), so no process can count payments or charges in memory. The money figures are read
from the database at scrape time (``DatabaseSnapshot``) and exposed by a custom collector;
only this process's own HTTP traffic (request counter, latency histogram, webhook outcomes)
is counted in memory, in a registry of the application's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.models import LedgerEntry, Operation, OperationStatus, Payment, PaymentStatus, User

log = logging.getLogger(__name__)

NS = "medialab"
JOB_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_INTERVAL = 0.05
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FINISHED = (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.REFUNDED)
FAILED = (OperationStatus.FAILED, OperationStatus.REFUNDED)
SCRAPE_TIMEOUT = 10.0
# A snapshot this young is served again: the money figures are totals over whole tables, and
# several scrapers (or a dashboard refreshing) must not each make the database add them up.
SNAPSHOT_MAX_AGE = 5.0


@dataclass
class DatabaseSnapshot:
    """Everything the database says, read in one transaction per scrape."""

    ok: bool = False
    seconds: float = 0.0
    payments: list[tuple[str, int, int, int]] = field(default_factory=list)  # status,n,sum,ref
    credited: tuple[int, int] = (0, 0)
    ledger: list[tuple[str, int, int, int]] = field(default_factory=list)  # kind,n,|sum|,|free|
    operations: list[tuple[str, str, str, int]] = field(default_factory=list)
    durations: dict[str, tuple[list[int], float, int]] = field(default_factory=dict)
    users: tuple[int, int, int, int] = (0, 0, 0, 0)  # count, balances, in debt, free left


def _seconds_between(dialect: str, start, end):  # type: ignore[no-untyped-def]
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


async def read_snapshot(session: AsyncSession) -> DatabaseSnapshot:
    snap = DatabaseSnapshot()
    started = time.perf_counter()
    rows = await session.execute(
        select(
            Payment.status,
            func.count(),
            func.coalesce(func.sum(Payment.amount), 0),
            func.coalesce(func.sum(Payment.refunded_amount), 0),
        ).group_by(Payment.status)
    )
    snap.payments = [(str(s), int(n), int(a), int(r)) for s, n, a, r in rows]
    credited = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Payment.amount), 0)).where(
                Payment.credited_at.is_not(None)
            )
        )
    ).one()
    snap.credited = (int(credited[0]), int(credited[1]))
    rows = await session.execute(
        select(
            LedgerEntry.kind,
            func.count(),
            func.coalesce(func.sum(func.abs(LedgerEntry.amount)), 0),
            func.coalesce(func.sum(func.abs(LedgerEntry.free_delta)), 0),
        ).group_by(LedgerEntry.kind)
    )
    snap.ledger = [(str(k), int(n), int(a), int(f)) for k, n, a, f in rows]
    rows = await session.execute(
        select(Operation.type, Operation.status, Operation.funding, func.count()).group_by(
            Operation.type, Operation.status, Operation.funding
        )
    )
    snap.operations = [(str(t), str(s), str(f), int(n)) for t, s, f, n in rows]

    dialect = session.get_bind().dialect.name
    duration = cast(_seconds_between(dialect, Operation.started_at, Operation.finished_at), Float)
    bucket_columns = [
        func.coalesce(func.sum(case((duration <= bound, 1), else_=0)), 0) for bound in JOB_BUCKETS
    ]
    rows = await session.execute(
        select(
            Operation.type,
            func.count(),
            func.coalesce(func.sum(duration), 0.0),
            *bucket_columns,
        )
        .where(
            and_(
                Operation.status.in_([s.value for s in FINISHED]),
                Operation.started_at.is_not(None),
                Operation.finished_at.is_not(None),
            )
        )
        .group_by(Operation.type)
    )
    for op_type, count, total, *buckets in rows:
        snap.durations[str(op_type)] = ([int(b) for b in buckets], float(total), int(count))
    users = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(User.balance), 0),
                func.coalesce(func.sum(case((User.balance < 0, 1), else_=0)), 0),
                func.coalesce(func.sum(User.free_operations_left), 0),
            )
        )
    ).one()
    snap.users = (int(users[0]), int(users[1]), int(users[2]), int(users[3]))
    snap.ok = True
    snap.seconds = time.perf_counter() - started
    return snap


class DatabaseCollector(Collector):
    """Yields the last snapshot; the /metrics handler refreshes it right before rendering."""

    def __init__(self) -> None:
        self.snapshot = DatabaseSnapshot()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        up = GaugeMetricFamily(f"{NS}_database_up", "Whether the database answered this scrape")
        up.add_metric([], 1.0 if snap.ok else 0.0)
        yield up
        took = GaugeMetricFamily(
            f"{NS}_database_scrape_seconds", "Time spent reading the figures below"
        )
        took.add_metric([], snap.seconds)
        yield took
        if not snap.ok:
            return

        by_status = GaugeMetricFamily(
            f"{NS}_payments", "Payment rows by current status", labels=["status"]
        )
        sum_status = GaugeMetricFamily(
            f"{NS}_payments_amount_kopecks",
            "Sum of payment amounts by current status, kopecks",
            labels=["status"],
        )
        seen = {status for status, *_ in snap.payments}
        for status, n, amount, _ in snap.payments:
            by_status.add_metric([status], n)
            sum_status.add_metric([status], amount)
        for status in PaymentStatus:
            if status.value not in seen:
                by_status.add_metric([status.value], 0)
                sum_status.add_metric([status.value], 0)
        yield by_status
        yield sum_status

        def pair(name: str, doc: str, n: int, amount: int) -> Iterator[Metric]:
            count = CounterMetricFamily(f"{NS}_payments_{name}", f"Payments {doc}")
            count.add_metric([], n)
            yield count
            total = CounterMetricFamily(
                f"{NS}_payments_{name}_kopecks", f"Sum of payments {doc}, kopecks"
            )
            total.add_metric([], amount)
            yield total

        created_n = sum(n for _, n, _, _ in snap.payments)
        created_sum = sum(a for _, _, a, _ in snap.payments)
        canceled = [(n, a) for s, n, a, _ in snap.payments if s == PaymentStatus.CANCELED]
        yield from pair("created", "created (every row, any status)", created_n, created_sum)
        yield from pair("credited", "credited to a balance", *snap.credited)
        yield from pair(
            "canceled", "canceled", sum(n for n, _ in canceled), sum(a for _, a in canceled)
        )
        refunded = CounterMetricFamily(
            f"{NS}_payments_refunded_kopecks", "Money returned to cards through YooKassa, kopecks"
        )
        refunded.add_metric([], sum(r for *_, r in snap.payments))
        yield refunded

        entries = CounterMetricFamily(
            f"{NS}_ledger_entries",
            "Ledger entries by kind (charge, refund, topup, ...)",
            labels=["kind"],
        )
        money = CounterMetricFamily(
            f"{NS}_ledger_kopecks",
            "Money moved by ledger entries of each kind (absolute), kopecks",
            labels=["kind"],
        )
        free = CounterMetricFamily(
            f"{NS}_ledger_free_operations",
            "Free operations moved by ledger entries of each kind (absolute)",
            labels=["kind"],
        )
        for kind, n, amount, free_ops in snap.ledger:
            entries.add_metric([kind], n)
            money.add_metric([kind], amount)
            free.add_metric([kind], free_ops)
        yield entries
        yield money
        yield free

        operations = GaugeMetricFamily(
            f"{NS}_operations",
            "Operations by type, current status and funding",
            labels=["type", "status", "funding"],
        )
        failures: dict[str, int] = {}
        for op_type, status, funding, n in snap.operations:
            operations.add_metric([op_type, status, funding], n)
            if status in FAILED:
                failures[op_type] = failures.get(op_type, 0) + n
        yield operations
        failed = CounterMetricFamily(
            f"{NS}_operation_failures",
            "Operations that failed (refunded, or failed with nothing to refund)",
            labels=["type"],
        )
        for op_type, n in sorted(failures.items()):
            failed.add_metric([op_type], n)
        yield failed

        durations = HistogramMetricFamily(
            f"{NS}_operation_duration_seconds",
            "Job run time of finished operations (started_at to finished_at)",
            labels=["type"],
        )
        for op_type, (buckets, total, count) in sorted(snap.durations.items()):
            pairs = [(repr(float(b)), float(c)) for b, c in zip(JOB_BUCKETS, buckets, strict=True)]
            pairs.append(("+Inf", float(count)))
            durations.add_metric([op_type], pairs, total)
        yield durations

        count, balances, in_debt, free_left = snap.users
        for name, doc, value in (
            ("users", "Users", count),
            (
                "users_balance_kopecks",
                "Sum of all balances (money owed to users), kopecks",
                balances,
            ),
            ("users_in_debt", "Users with a negative balance after a card refund", in_debt),
            ("users_free_operations_left", "Free operations not yet used", free_left),
        ):
            gauge = GaugeMetricFamily(f"{NS}_{name}", doc)
            gauge.add_metric([], value)
            yield gauge


KNOWN_EVENTS = frozenset(
    {"payment.succeeded", "payment.canceled", "payment.waiting_for_capture", "refund.succeeded"}
)


class WebMetrics:
    """This process's own metrics plus the database collector, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.database = DatabaseCollector()
        self.registry.register(self.database)
        self.requests = Counter(
            f"{NS}_web_requests",
            "HTTP requests served by this web process",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{NS}_web_request_duration_seconds",
            "HTTP request latency in this web process",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.notifications = Counter(
            f"{NS}_webhook_notifications",
            "YooKassa notifications handled by this process, by event and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.rejections = Counter(
            f"{NS}_webhook_rejections",
            "YooKassa webhook requests refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            f"{NS}_web_event_loop_lag_seconds",
            "How late a timer of this process's event loop fired (a blocked loop is late)",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag_max = Gauge(
            f"{NS}_web_event_loop_lag_max_seconds",
            "The largest event loop lag seen since this process started",
            registry=self.registry,
        )
        self._lock = asyncio.Lock()
        self._read_at: float | None = None  # when the database was last read

    async def probe_loop_lag(self, interval: float = LAG_INTERVAL) -> None:
        """Sleep ``interval`` again and again and record how late each wake-up is.

        Anything that blocks the loop (a synchronous SDK call, a CPU-bound step) shows up
        here as lag; the benchmark reads it back from /metrics after its run.
        """
        loop = asyncio.get_running_loop()
        worst = 0.0
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            lag = max(0.0, loop.time() - started - interval)
            self.loop_lag.observe(lag)
            if lag > worst:
                worst = lag
                self.loop_lag_max.set(lag)

    def notification(self, event: str | None, outcome: str) -> None:
        label = event if event in KNOWN_EVENTS else "other"
        self.notifications.labels(label, outcome).inc()

    async def render(self, sessionmaker: async_sessionmaker[AsyncSession] | None) -> bytes:
        snapshot = DatabaseSnapshot()
        if sessionmaker is not None:
            async with self._lock:  # one scrape at a time reads the database
                fresh = self._read_at is not None and (
                    time.monotonic() - self._read_at < SNAPSHOT_MAX_AGE
                )
                reuse = fresh and self.database.snapshot.ok
                try:
                    async with asyncio.timeout(SCRAPE_TIMEOUT), sessionmaker() as session:
                        if reuse:  # the totals again, but whether the database is up now
                            await session.execute(select(1))
                            snapshot = self.database.snapshot
                        else:
                            snapshot = await read_snapshot(session)
                            self._read_at = time.monotonic()
                except Exception as exc:  # noqa: BLE001 - a scrape must not fail
                    self._read_at = None
                    log.warning("metrics: database not readable: %s", type(exc).__name__)
        # No await between setting the snapshot and rendering it: atomic on the loop.
        self.database.snapshot = snapshot
        return generate_latest(self.registry)
