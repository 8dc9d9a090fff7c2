"""The ledger: every change of a balance or a free-operations counter, with its entry.

A money rule (the charge, a refund, a credit, an adjustment) is written once, as a chain of
dependent Core statements (:class:`Steps`): each step is built from the rows the steps before
it returned. :func:`run` sends the chain

* on PostgreSQL as one ``WITH`` statement: one round trip, atomic by itself;
* on SQLite (no data-modifying ``WITH``) one statement after another, each earlier row bound
  as parameters, in the caller's transaction (``BEGIN IMMEDIATE`` holds the write lock).

:func:`move` is the one place a balance or free counter moves: the user's conditional
``UPDATE`` and its ledger entry, always together. The ledger is append-only (migration 0003).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    bindparam,
    cast,
    column,
    insert,
    literal,
    literal_column,
    null,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.visitors import InternalTraversal

from billing.models import LedgerEntry, LedgerKind, User

users = User.__table__
entries = LedgerEntry.__table__

# A step's builder: the earlier steps' columns by step name -> the step's statement (with
# RETURNING, or a SELECT). The first returned column of a step is never NULL in its row.
Builder = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Step:
    """One statement of a chain. ``optional``: the step may write nothing (its row is then
    None, its columns NULL for the later steps) without ending the chain — for a write that
    happens only in some cases (the holding's counter when a charge takes from a plan)."""

    name: str
    build: Builder
    optional: bool = False
    # The columns the caller reads (PostgreSQL returns only these; the first must be one
    # that is never NULL in a row); None: all of them; (): none (the step still runs, and
    # :meth:`Chain.run` gives no row of it on PostgreSQL).
    returns: tuple[str, ...] | None = None


def _cacheable(dialect: Any) -> tuple[type, type]:
    # The dialects' ON CONFLICT inserts opt out of SQLAlchemy's compiled cache (neither the
    # insert nor its ON CONFLICT clause set ``inherit_cache``), so a statement holding one
    # was compiled anew on every call (the charge's whole WITH statement: 55 instead of ~750
    # charges/s at 16 users, before a chain ran as its SQL text on PostgreSQL). SQLite runs
    # each step's statement: 176 against 152 charges/s without (bench/internals.py). These
    # subclasses opt in, the documented way: the clause's cache key is ``_skip_on``
    # (table.column), all that ``insert_or_skip`` varies.
    clause = type(
        "SkipOnConflict",
        (dialect.dml.OnConflictDoNothing,),
        {
            "inherit_cache": True,
            "_skip_on": "",
            "_traverse_internals": [("_skip_on", InternalTraversal.dp_string)],
        },
    )
    statement = type("InsertOrSkip", (dialect.Insert,), {"inherit_cache": True})
    return statement, clause


_INSERT_OR_SKIP = {"postgresql": _cacheable(postgresql), "sqlite": _cacheable(sqlite)}


def insert_or_skip(dialect: str, column: Any) -> Any:
    """``INSERT ... ON CONFLICT (column) DO NOTHING`` into the column's table: a once-only
    key that is already there inserts nothing (and RETURNING returns no row)."""
    statement_class, clause_class = _INSERT_OR_SKIP[dialect]
    clause = clause_class(index_elements=[column])
    clause._skip_on = f"{column.table.name}.{column.name}"
    statement = statement_class(column.table)
    statement._post_values_clause = clause
    return statement


class Chain:
    """Dependent steps, built once (their inputs are ``bindparam``s given to :meth:`run`):
    the statements are not built again per call. On PostgreSQL a chain ``kept`` (run again
    and again) keeps its one statement as SQL text (:func:`as_text`); a chain run once stays
    a Core statement, as every step's on SQLite, which SQLAlchemy's compiled cache finds by
    a memoized key."""

    def __init__(self, *steps: Step, kept: bool = True) -> None:
        self.steps = steps
        self.kept = kept  # run again and again: worth compiling once (as_text)
        self._one: Any = None
        self._each: list[Any] | None = None

    async def run(self, session: AsyncSession, **params: Any) -> dict[str, Any]:
        """The row of each step by name (None for a step that wrote nothing).

        A step with no row ends the chain: every later step is built from it (on PostgreSQL
        they select from its empty result and write nothing either) — unless the step is
        ``optional``: later steps then see its columns as NULL (on PostgreSQL they read them
        through scalar subqueries, which are NULL over an empty result, instead of selecting
        from it) and go on."""
        if session.get_bind().dialect.name == "postgresql":
            return await self._run_as_one_statement(session, params)
        if self._each is None:
            each: list[Any] = []  # stored whole at the end: never seen half-built
            earlier: dict[str, Any] = {}
            for step in self.steps:
                statement = step.build(earlier)
                each.append(statement)
                earlier[step.name] = SimpleNamespace(
                    **{
                        c.key: bindparam(f"{step.name}__{c.key}", type_=c.type)
                        for c in statement.exported_columns
                    }
                )
            self._each = each
        rows: dict[str, Any] = {step.name: None for step in self.steps}
        values = dict(params)
        for step, statement in zip(self.steps, self._each, strict=True):
            row = (await session.execute(statement, values)).one_or_none()
            if row is None:
                if not step.optional:
                    break
                values.update({f"{step.name}__{c.key}": None for c in statement.exported_columns})
                continue
            rows[step.name] = row
            values.update({f"{step.name}__{k}": v for k, v in row._mapping.items()})
        return rows

    async def _run_as_one_statement(
        self, session: AsyncSession, params: dict[str, Any]
    ) -> dict[str, Any]:
        if self._one is None:
            ctes: dict[str, Any] = {}
            seen: dict[str, Any] = {}  # what later steps are given of each step
            for step in self.steps:
                cte = step.build(dict(seen)).cte(step.name)
                ctes[step.name] = cte
                seen[step.name] = (
                    SimpleNamespace(**{c.key: select(c).scalar_subquery() for c in cte.c})
                    if step.optional
                    else cte.c
                )
            first, *rest = ctes.values()
            joined = first
            for cte in rest:
                joined = joined.outerjoin(cte, true())
            wanted = {
                step.name: [c for c in ctes[step.name].c if c.key in step.returns]
                if step.returns is not None
                else list(ctes[step.name].c)
                for step in self.steps
            }
            columns = [(name, c) for name, cs in wanted.items() for c in cs]
            # Each step's columns: its name, their keys, where they start in the row (every
            # column the caller reads costs it time: fewer is faster).
            names, start = [], 0
            for name, cs in wanted.items():
                if cs:
                    names.append((name, tuple(c.key for c in cs), start, start + len(cs)))
                    start += len(cs)
            # The names first, the statement last: a run that sees the statement sees both.
            self._names = names
            one = select(*(c.label(f"{name}__{c.key}") for name, c in columns))
            one = one.select_from(joined)
            self._one = as_text(one) if self.kept else one
        row = (await session.execute(self._one, params)).one_or_none()
        if row is None:
            return {name: None for name, *_ in self._names}
        return {
            name: SimpleNamespace(**dict(zip(keys, row[start:end], strict=True)))
            if row[start] is not None
            else None
            for name, keys, start, end in self._names
        }


# PostgreSQL's SQL with named parameters and no casts of its own: the dialect that runs the
# text adds them to its typed parameters, as it did to the statement's.
_PG_TEXT = postgresql.dialect(paramstyle="named")
_PG_TEXT.bind_typing = BindTyping.NONE


def as_text(statement: Any) -> Any:
    """A PostgreSQL statement as ``text()`` with its typed parameters and result columns.

    SQLAlchemy finds a statement's compiled form by its cache key, and hashes that key on
    every execution: for a chain as large as the charge, 16 µs of the charge's CPU (the key
    of a ``text()`` is its string, whose hash Python keeps). Compiled here once, the text
    runs as the statement did: the same SQL, parameters typed as before (the running
    dialect renders their casts), result columns typed (their metadata cached). A statement
    with an ``IN`` of values given at run time (rendered anew per run) is returned as it is."""
    compiled = statement.compile(dialect=_PG_TEXT)
    if any(bp.expanding for bp in compiled.bind_names):
        return statement  # an IN of values given at run time: rendered per run, as it is
    binds = {name: bp for bp, name in compiled.bind_names.items()}  # by the name rendered
    return (
        text(str(compiled))
        .bindparams(
            *(
                bindparam(name, bp.value, type_=bp.type, required=bp.required)
                for name, bp in binds.items()
            )
        )
        .columns(*(column(c.name, c.type) for c in statement.selected_columns))
    )


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def run(session: AsyncSession, steps: list[Step], **params: Any) -> dict[str, Any]:
    """Build the chain and run it once (see :meth:`Chain.run`). Its statement stays a Core
    statement: SQLAlchemy's compiled cache finds it by its key, where compiling it to text
    for this one run cost ~1 ms of CPU more (a new user's signup, 1.38x: bench/charge.py
    --signups-only)."""
    return await Chain(*steps, kept=False).run(session, **params)


def entry(
    moved: Any,
    *,
    kind: LedgerKind,
    amount: ColumnElement[Any] | int,
    free_delta: ColumnElement[Any] | int,
    key: ColumnElement[Any] | str,
    operation_id: ColumnElement[Any] | int | None = None,
    payment_id: ColumnElement[Any] | int | None = None,
    reason: ColumnElement[Any] | str | None = None,
    where: ColumnElement[bool] | None = None,
    units_delta: ColumnElement[Any] | int = 0,
    units_after: ColumnElement[Any] | int | None = None,
    holding_id: ColumnElement[Any] | int | None = None,
    plan_id: ColumnElement[Any] | int | None = None,
) -> Any:
    """The ledger entry of a move: ``moved`` is the user step's columns (id, balance,
    free_operations_left after the change).

    A holding's units (plans): ``units_delta`` moved on ``holding_id``, whose ``units_left``
    is then ``units_after`` (given whenever ``holding_id`` is: a CHECK constraint);
    ``plan_id``: the plan bought or renewed."""
    values = {
        "user_id": moved.id,
        "kind": const(kind.value),
        "amount": _value(amount, entries.c.amount.type),
        "free_delta": _value(free_delta, Integer),
        "balance_after": moved.balance,
        "free_after": moved.free_operations_left,
        "operation_id": _value(operation_id, entries.c.operation_id.type),
        "payment_id": _value(payment_id, entries.c.payment_id.type),
        "idempotency_key": _value(key, String),
        "reason": _value(reason, String),
        "units_delta": _value(units_delta, Integer),
        "units_after": _value(units_after, Integer),
        "holding_id": _value(holding_id, entries.c.holding_id.type),
        "plan_id": _value(plan_id, entries.c.plan_id.type),
    }
    source = select(*(value.label(name) for name, value in values.items()))
    if where is not None:
        source = source.where(where)
    return (
        insert(entries)
        .from_select(list(values), source, include_defaults=False)
        .returning(entries.c.id)
    )


def key_of(prefix: str, column: ColumnElement[Any]) -> ColumnElement[str]:
    """``prefix`` followed by an id computed in the same statement ("charge:" || op.id)."""
    return const(prefix) + cast(column, String)


def const(value: int | str | None) -> ColumnElement[Any]:
    """One of our own constants (a kind, a status, 0, 1) written into the SQL, not bound:
    fewer parameters to process per call. Never for outside input."""
    if value is None:
        return null()
    if isinstance(value, str):
        assert "'" not in value, value
        return literal_column(f"'{value}'", String)
    return literal_column(str(int(value)), Integer)


def _value(value: Any, type_: Any) -> ColumnElement[Any]:
    if isinstance(value, ColumnElement):
        return value
    return literal(value, type_) if value is not None else null()


def balance_step(
    user_id: ColumnElement[Any] | int,
    *,
    amount: ColumnElement[Any] | int = 0,
    free_delta: ColumnElement[Any] | int = 0,
    conditions: tuple[ColumnElement[bool], ...] = (),
) -> Any:
    """The user's conditional ``UPDATE``: the balance and free counter move by ``amount`` and
    ``free_delta``; RETURNING what the entry needs. No row when a condition fails."""
    return (
        update(users)
        .where(users.c.id == user_id, *conditions)
        .values(
            balance=users.c.balance + amount,
            free_operations_left=users.c.free_operations_left + free_delta,
        )
        .returning(
            users.c.id,
            users.c.balance,
            users.c.free_operations_left,
            users.c.free_operations_granted,
            users.c.telegram_id,
            users.c.language,
            users.c.email,
        )
    )


async def move(
    session: AsyncSession,
    *,
    kind: LedgerKind,
    key: str,
    user_id: int | None = None,
    owner: Any = None,
    amount: int = 0,
    free_delta: int = 0,
    conditions: tuple[ColumnElement[bool], ...] = (),
    operation_id: int | None = None,
    payment_id: int | None = None,
    reason: str | None = None,
    after: list[Step] | None = None,
) -> Any | None:
    """Move the user's balance and free counter and write the entry, as one chain.

    The user is ``user_id``, or the ``user_id`` that ``owner`` returns: a conditional
    statement (a payment's status change) the move depends on. Returns the user's row after
    the move (see :func:`balance_step`), or None when ``owner`` or ``conditions`` held back
    the move (nothing written). ``after``: further steps of the same chain (they are given
    the user's row as "moved")."""
    steps = [] if owner is None else [Step("owner", lambda _: owner)]
    rows = await run(
        session,
        [
            *steps,
            Step(
                "moved",
                lambda p: balance_step(
                    user_id if owner is None else p["owner"].user_id,
                    amount=amount,
                    free_delta=free_delta,
                    conditions=conditions,
                ),
            ),
            Step(
                "entry",
                lambda p: entry(
                    p["moved"],
                    kind=kind,
                    amount=amount,
                    free_delta=free_delta,
                    key=key,
                    operation_id=operation_id,
                    payment_id=payment_id,
                    reason=reason,
                ),
            ),
            *(after or ()),
        ],
    )
    return rows["moved"]
