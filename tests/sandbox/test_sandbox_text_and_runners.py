"""Formatting rules of the Telegram emulator, and the ``python -m`` runners."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import pytest

from sandbox._common import free_port
from sandbox._tg_text import EntityParseError, auto_entities, format_text


def test_html_entities_use_utf16_offsets_and_nesting() -> None:
    text, entities = format_text(
        '👍 <b>Жирный <i>курсив</i></b> <a href="https://x.org">link</a> '
        '<pre><code class="language-python">print(1)</code></pre> &lt;tag&gt;',
        "HTML",
        None,
    )
    assert text == "👍 Жирный курсив link print(1) <tag>"
    assert entities == [
        {"offset": 3, "length": 13, "type": "bold"},
        {"offset": 10, "length": 6, "type": "italic"},
        {"offset": 17, "length": 4, "type": "text_link", "url": "https://x.org"},
        {"offset": 22, "length": 8, "type": "pre", "language": "python"},
    ]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("<div>x</div>", 'Unsupported start tag "div"'),
        ("<b>x</i>", "Unmatched end tag"),
        ("<b>open", "Can't find end tag"),
        ("<br/>", 'Unsupported start tag "br"'),
    ],
)
def test_html_errors(source: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=error):
        format_text(source, "HTML", None)


def test_markdown_v2_and_legacy() -> None:
    text, entities = format_text(
        r"*жирно* _курсив_ __под__ ~зач~ ||спойлер|| `код` "
        r"[ссылка](https://x.org) 1\.5\!",
        "MarkdownV2",
        None,
    )
    assert text == "жирно курсив под зач спойлер код ссылка 1.5!"
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]
    with pytest.raises(EntityParseError, match="Character '!' is reserved"):
        format_text("Привет!", "MarkdownV2", None)
    text, entities = format_text("*bold* and _it_", "Markdown", None)
    assert text == "bold and it" and [e["type"] for e in entities] == ["bold", "italic"]


def test_trimming_explicit_entities_and_auto_detection() -> None:
    text, entities = format_text("  <b>hi</b>  ", "HTML", None)
    assert text == "hi" and entities == [{"offset": 0, "length": 2, "type": "bold"}]
    explicit = [{"offset": 0, "length": 2, "type": "italic"}]
    assert format_text("hi <b>", None, explicit) == ("hi <b>", explicit)
    assert format_text("<b>", None, None) == ("<b>", [])
    found = auto_entities("/start@media_bot go to https://x.org, ask @support_team")
    assert [(e["type"], e["offset"], e["length"]) for e in found] == [
        ("bot_command", 0, 16),
        ("url", 23, 13),
        ("mention", 42, 13),
    ]


async def _wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(30):
            while True:
                assert process.returncode is None, "the runner exited"
                try:
                    async with http.get(url) as resp:
                        if resp.status < 500:
                            return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)


@pytest.mark.parametrize("module", ["telegram", "yookassa"])
async def test_python_m_runner_serves_the_api(module: str) -> None:
    port = free_port()
    args = ["-m", f"sandbox.{module}", "--host", "127.0.0.1", "--port", str(port)]
    if module == "yookassa":
        args += ["--shop-id", "100500", "--secret-key", "test_key"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        probe = f"{base}/bot1:a/getMe" if module == "telegram" else f"{base}/_emu/config"
        await _wait_ready(probe, process)
        async with aiohttp.ClientSession() as http, http.get(probe) as resp:
            body = await resp.json()
        if module == "telegram":
            assert body["ok"] is True and body["result"]["id"] == 1
        else:
            assert body["shop_id"] == "100500"
    finally:
        process.terminate()
        await process.wait()
