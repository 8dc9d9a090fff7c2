"""Keep the emulators' state between sandbox runs (``python -m sandbox``).

The Telegram and YooKassa emulators hold everything in memory. The sandbox saves their state
to JSON under its state directory (every few seconds when something changed, and on stop)
and loads it on the next start, so a second run shows the same chat and knows the same
payments. It matters beyond comfort: the bot keys an operation by "chat_id:message_id", so
an emulator that started counting message ids from 1 again would make new requests look
like re-deliveries of old ones.

Only plain data is written; the emulators' own classes are rebuilt from it field by field
(unknown fields are ignored, missing ones take their defaults). A file that cannot be read
is moved aside and the emulator starts empty.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("sandbox.snapshot")

VERSION = 1


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _dataclass_dump(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in skip}


def _dataclass_load(cls: type, raw: dict[str, Any], /, **extra: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in raw.items() if k in names}
    values.update(extra)
    return cls(**values)


class _Snapshot:
    path: Path

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved_digest: str | None = None

    def dump(self) -> dict[str, Any]:
        raise NotImplementedError

    def restore(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def load(self) -> bool:
        """Restore the saved state, if any. False when there was nothing (usable) to load."""
        if not self.path.exists():
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"unknown snapshot version {data.get('version')!r}")
            self.restore(data)
        except Exception:  # noqa: BLE001 - a broken snapshot must not stop the sandbox
            broken = self.path.with_suffix(".broken.json")
            log.exception("cannot restore %s; moved to %s, starting empty", self.path, broken)
            os.replace(self.path, broken)
            return False
        self._saved_digest = self._digest(self.dump())
        return True

    @staticmethod
    def _digest(data: dict[str, Any]) -> str:
        return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    def save(self) -> None:
        data = self.dump()
        _write_json(self.path, data)
        self._saved_digest = self._digest(data)

    def save_if_changed(self) -> bool:
        data = self.dump()
        digest = self._digest(data)
        if digest == self._saved_digest:
            return False
        _write_json(self.path, data)
        self._saved_digest = digest
        return True


class TelegramSnapshot(_Snapshot):
    """Bots, users, chats with their messages, and the stored files of the Bot API emulator.

    Files stay where the emulator wrote them (its ``files_dir``); the snapshot keeps their
    metadata and paths. Pending updates are kept too: a message sent while the bot was down
    is delivered when it is back.
    """

    def __init__(self, emulator: Any, path: Path) -> None:
        super().__init__(path)
        self.emu = emulator

    # ------------------------------------------------------------------- dump
    def _bot(self, bot: Any) -> dict[str, Any]:
        groups: list[list[str]] = []
        seen: set[int] = set()
        for sizes in bot.photo_groups.values():
            if id(sizes) not in seen:
                seen.add(id(sizes))
                groups.append([s.file_id for s in sizes])
        return {
            "token": bot.token,
            "bound": bot.bound,
            "users": [bot.users[k] for k in sorted(bot.users)],
            "chats": [self._chat(bot.chats[k]) for k in sorted(bot.chats)],
            "files": [self._file(f) for f in bot.files.values()],
            "photo_groups": groups,
            "pending": [e.update for e in bot.queue],
            "next_update_id": bot.next_update_id,
            "file_counter": bot.file_counter,
            "commands": bot.commands,
            "blocked": sorted(bot.blocked),
            # Telegram keeps a user's Stars and the invoices in their chat across restarts;
            # so does the sandbox (a pre-checkout in flight is not kept: it is answered or gone).
            "stars": {str(k): v for k, v in sorted(bot.stars.items())},
            "invoices": [[c, m, bot.invoices[(c, m)]] for c, m in sorted(bot.invoices)],
            "charges": list(bot.charges.values()),
        }

    @staticmethod
    def _chat(chat: Any) -> dict[str, Any]:
        return {
            "id": chat.id,
            "info": chat.info,
            "messages": [_dataclass_dump(chat.messages[k]) for k in sorted(chat.messages)],
            "next_message_id": chat.next_message_id,
            "version": chat.version,
            "callback_answers": chat.callback_answers[-50:],
            "reply_keyboard": chat.reply_keyboard,
        }

    @staticmethod
    def _file(stored: Any) -> dict[str, Any]:
        data = _dataclass_dump(stored, skip=("data", "disk_path"))
        data["disk_path"] = str(stored.disk_path) if stored.disk_path else None
        return data

    def dump(self) -> dict[str, Any]:
        bots = [self._bot(b) for b in self.emu.bots.values()]
        default = self.emu.default_bot
        if default is not None and not default.bound:
            bots.append(self._bot(default))
        return {"version": VERSION, "bots": bots}

    # ---------------------------------------------------------------- restore
    def restore(self, data: dict[str, Any]) -> None:
        from sandbox import telegram as tg

        for raw in data.get("bots", []):
            token = raw.get("token")
            bot = tg.BotState(token)
            bot.users = {int(u["id"]): u for u in raw.get("users", [])}
            for stored_raw in raw.get("files", []):
                disk = stored_raw.get("disk_path")
                if not disk or not Path(disk).exists():
                    continue  # kept in memory last time, or deleted since: gone
                stored = _dataclass_load(
                    tg.StoredFile, stored_raw, disk_path=Path(disk), data=None
                )
                bot.files[stored.file_id] = stored
                bot.files_by_path[stored.file_path] = stored
            for group_ids in raw.get("photo_groups", []):
                sizes = [bot.files[i] for i in group_ids if i in bot.files]
                for s in sizes:
                    bot.photo_groups[s.file_id] = sizes
            for chat_raw in raw.get("chats", []):
                chat = tg.Chat(int(chat_raw["id"]), chat_raw["info"])
                for rec_raw in chat_raw.get("messages", []):
                    record = _dataclass_load(tg.MessageRecord, rec_raw)
                    chat.messages[int(record.message["message_id"])] = record
                chat.next_message_id = int(chat_raw["next_message_id"])
                chat.version = int(chat_raw["version"])
                chat.callback_answers = list(chat_raw.get("callback_answers") or [])
                chat.reply_keyboard = chat_raw.get("reply_keyboard")
                bot.chats[chat.id] = chat
            for update in raw.get("pending", []):
                bot.updates[update["update_id"]] = update
                bot.queue.append(tg.QueuedUpdate(update))
            bot.next_update_id = int(raw.get("next_update_id") or bot.next_update_id)
            bot.file_counter = int(raw.get("file_counter") or 0)
            bot.commands = dict(raw.get("commands") or {})
            bot.blocked = {int(x) for x in raw.get("blocked", [])}
            bot.stars = {int(k): int(v) for k, v in (raw.get("stars") or {}).items()}
            bot.invoices = {(int(c), int(m)): inv for c, m, inv in raw.get("invoices", [])}
            bot.charges = {c["charge_id"]: c for c in raw.get("charges", [])}
            if token:
                self.emu.bots[token] = bot
                if self.emu.default_bot is None:
                    self.emu.default_bot = bot
            else:
                bot.bound = False
                self.emu.default_bot = bot


class YooKassaSnapshot(_Snapshot):
    """Payments, refunds and idempotence keys of the YooKassa emulator (not the request log
    or the notification history)."""

    def __init__(self, emulator: Any, path: Path) -> None:
        super().__init__(path)
        self.emu = emulator

    def dump(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "payments": [_dataclass_dump(r) for r in self.emu.payments.values()],
            "refunds": list(self.emu.refunds.values()),
            "idempotence": {k: list(v) for k, v in self.emu.idempotence.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        from sandbox import yookassa as yk

        for raw in data.get("payments", []):
            record = _dataclass_load(yk.PaymentRecord, raw)
            self.emu.payments[record.payment["id"]] = record
        for refund in data.get("refunds", []):
            self.emu.refunds[refund["id"]] = refund
        for key, value in (data.get("idempotence") or {}).items():
            self.emu.idempotence[key] = tuple(value)
