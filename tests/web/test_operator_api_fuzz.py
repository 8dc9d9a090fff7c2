"""schemathesis against the running web server, over real HTTP: every operation of the
operator API's own OpenAPI document, with data that fits it and hostile data that does not,
every check schemathesis has (no 5xx, the documented statuses, content types, headers and
response schemas, invalid data refused, auth not ignored). The ledger audit runs after."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlalchemy import func, select

from billing import accounts
from billing.models import LedgerEntry, LedgerKind
from tests.web.conftest import StackFactory

WRITE_SECRET = "fuzz-write-secret-0123456789"
TOKENS = f"fuzzer:write:{WRITE_SECRET}"
USER = 7001
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


async def _run(url: str, workdir: Path, *extra: str, config: str = "") -> tuple[int, str]:
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(config, encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        SCHEMATHESIS,
        "--config-file",
        str(config_file),
        "--no-color",
        "run",
        f"{url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--mode",
        "all",
        "--max-examples",
        "40",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "-H",
        f"Authorization: Bearer {WRITE_SECRET}",
        *extra,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


async def test_schemathesis_finds_nothing_and_the_ledger_stays_clean(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack(API_TOKENS=TOKENS, API_RATE_LIMIT_PER_MINUTE=1_000_000)
    async with stack.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=USER, free_operations=2)
        await session.commit()

    # Any Telegram id at all (most are nobody: 404), any query, header and body.
    code, out = await _run(stack.url, tmp_path)
    print(out)
    assert code == 0, out
    assert "7 passed" in out  # every operation of the document was tested

    # The same with the path on a real user: the handlers' success paths, the top-up
    # crediting under whatever keys and bodies come.
    code, out = await _run(
        stack.url, tmp_path, config=f'[parameters]\n"path.telegram_id" = {USER}\n'
    )
    print(out)
    assert code == 0, out
    async with stack.sessionmaker() as session:
        credits = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == LedgerKind.ADJUSTMENT.value)
        )
    assert credits, "no top-up reached the ledger"
    # The audit (the engine fixture) checks every balance against its entries after this.
