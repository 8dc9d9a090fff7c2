"""Telegram text formatting: parse_mode HTML / MarkdownV2 / Markdown into (text, entities).

Offsets and lengths are in UTF-16 code units, as in the Bot API. The parsers follow the
documented Bot API rules closely enough that a bot's formatting mistakes (an unsupported tag,
an unescaped reserved character in MarkdownV2) fail here the way they fail on Telegram.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any


class EntityParseError(ValueError):
    pass


def u16len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class _TgHTMLParser(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.parts: list[str] = []
        self.pos16 = 0
        self.stack: list[tuple[str, dict[str, str | None], int]] = []
        self.entities: list[dict[str, Any]] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        lines = self.source.split("\n")
        char_offset = sum(len(x) + 1 for x in lines[: line - 1]) + col
        return len(self.source[:char_offset].encode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag not in _HTML_TAGS or (tag == "span" and attr.get("class") != "tg-spoiler"):
            raise EntityParseError(
                f'Unsupported start tag "{tag}" at byte offset {self._offset()}'
            )
        self.stack.append((tag, attr, self.pos16))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {self._offset()}')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {self._offset()}")
        open_tag, attr, start = self.stack[-1]
        if open_tag != tag:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {self._offset()}, "
                f'expected "</{open_tag}>", found "</{tag}>"'
            )
        self.stack.pop()
        length = self.pos16 - start
        if length <= 0:
            return
        kind = _HTML_TAGS[tag]
        entity: dict[str, Any] = {"offset": start, "length": length, "type": kind}
        if tag == "a":
            href = attr.get("href") or ""
            match = re.fullmatch(r"tg://user\?id=(\d+)", href)
            if match:
                entity = {
                    **entity,
                    "type": "text_mention",
                    "user": {"id": int(match.group(1)), "is_bot": False, "first_name": ""},
                }
            elif href:
                entity["url"] = href
            else:
                return
        elif tag == "code":
            cls = attr.get("class") or ""
            if cls.startswith("language-") and self.stack and self.stack[-1][0] == "pre":
                self.stack[-1][1]["_language"] = cls[len("language-") :]
                return
        elif tag == "pre":
            if attr.get("_language"):
                entity["language"] = attr["_language"]
        elif tag == "blockquote" and "expandable" in attr:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = attr.get("emoji-id") or ""
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.pos16 += u16len(data)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        self.close()
        if self.stack:
            tag = self.stack[-1][0]
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self.parts), self.entities


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    parser = _TgHTMLParser(source)
    parser.feed(source)
    return parser.result()


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}


def parse_markdown_v2(source: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    pos16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int]] = []
    i = 0
    n = len(source)

    def emit(s: str) -> None:
        nonlocal pos16
        out.append(s)
        pos16 += u16len(s)

    while i < n:
        ch = source[i]
        if ch == "\\":
            if i + 1 < n and ord(source[i + 1]) < 127:
                emit(source[i + 1])
                i += 2
                continue
            raise EntityParseError(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if source.startswith("```", i):
            end = source.find("```", i + 3)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of Pre entity at byte offset {len(source[:i].encode())}"
                )
            body = source[i + 3 : end]
            language = ""
            if "\n" in body:
                first, rest = body.split("\n", 1)
                if first and " " not in first:
                    language, body = first, rest
            body = re.sub(r"\\([`\\])", r"\1", body)
            start = pos16
            emit(body)
            if body:
                entity: dict[str, Any] = {"offset": start, "length": pos16 - start, "type": "pre"}
                if language:
                    entity["language"] = language
                entities.append(entity)
            i = end + 3
            continue
        if ch == "`":
            end = source.find("`", i + 1)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of Code entity at byte offset {len(source[:i].encode())}"
                )
            body = re.sub(r"\\([`\\])", r"\1", source[i + 1 : end])
            start = pos16
            emit(body)
            if body:
                entities.append({"offset": start, "length": pos16 - start, "type": "code"})
            i = end + 1
            continue
        if ch == "[":
            stack.append(("[", pos16))
            i += 1
            continue
        if ch == "]" and stack and stack[-1][0] == "[":
            if not source.startswith("(", i + 1):
                raise EntityParseError(
                    "Character ']' is reserved and must be escaped with the preceding '\\'"
                )
            end = source.find(")", i + 2)
            if end < 0:
                raise EntityParseError("Can't find end of a URL")
            url = re.sub(r"\\([)\\])", r"\1", source[i + 2 : end])
            _, start = stack.pop()
            if pos16 > start:
                entities.append(
                    {"offset": start, "length": pos16 - start, "type": "text_link", "url": url}
                )
            i = end + 1
            continue
        marker = None
        for candidate in ("__", "||", "*", "_", "~"):
            if source.startswith(candidate, i):
                marker = candidate
                break
        if marker is not None:
            if stack and stack[-1][0] == marker:
                _, start = stack.pop()
                if pos16 > start:
                    entities.append(
                        {"offset": start, "length": pos16 - start, "type": _MDV2_MARKERS[marker]}
                    )
            else:
                stack.append((marker, pos16))
            i += len(marker)
            continue
        if ch in _MDV2_RESERVED:
            raise EntityParseError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        emit(ch)
        i += 1
    if stack:
        kind = stack[-1][0]
        raise EntityParseError(
            f"Can't find end of {'TextUrl' if kind == '[' else 'entity'} "
            f"starting at byte offset {len(source.encode())}"
        )
    return "".join(out), entities


def parse_markdown_legacy(source: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    pos16 = 0
    entities: list[dict[str, Any]] = []
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source) and source[i + 1] in "*_`[":
            out.append(source[i + 1])
            pos16 += 1
            i += 2
            continue
        if ch in kinds:
            end = source.find(ch, i + 1)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset "
                    f"{len(source[:i].encode())}"
                )
            body = source[i + 1 : end]
            if body:
                entities.append({"offset": pos16, "length": u16len(body), "type": kinds[ch]})
            out.append(body)
            pos16 += u16len(body)
            i = end + 1
            continue
        out.append(ch)
        pos16 += u16len(ch)
        i += 1
    return "".join(out), entities


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims whitespace around a message; entities follow the trimmed text."""
    stripped_left = text.lstrip()
    lead = u16len(text) - u16len(stripped_left)
    result = stripped_left.rstrip()
    total = u16len(result)
    fixed = []
    for e in entities:
        start = max(0, e["offset"] - lead)
        end = min(total, e["offset"] - lead + e["length"])
        if end > start:
            fixed.append({**e, "offset": start, "length": end - start})
    return result, fixed


_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_URL_RE = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)\]']")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}")


def auto_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram detects by itself in a user's plain text."""
    found = []
    for regex, kind in ((_COMMAND_RE, "bot_command"), (_URL_RE, "url"), (_MENTION_RE, "mention")):
        for m in regex.finditer(text):
            found.append(
                {"offset": u16len(text[: m.start()]), "length": u16len(m.group(0)), "type": kind}
            )
    found.sort(key=lambda e: (e["offset"], -e["length"]))
    return found


def format_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Apply parse_mode (or explicit entities) the way the Bot API does."""
    if entities:
        return _strip(text, list(entities))
    mode = (parse_mode or "").lower()
    if mode == "html":
        plain, found = parse_html(text)
    elif mode == "markdownv2":
        plain, found = parse_markdown_v2(text)
    elif mode == "markdown":
        plain, found = parse_markdown_legacy(text)
    elif mode:
        raise EntityParseError(f'Unsupported parse_mode "{parse_mode}"')
    else:
        plain, found = text, []
    found.sort(key=lambda e: (e["offset"], -e["length"]))
    return _strip(plain, found)
