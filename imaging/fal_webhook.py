"""fal.ai webhooks: the signature check and what a webhook's body says.

fal signs each webhook delivery with ED25519 (https://docs.fal.ai/model-endpoints/webhooks,
"Verifying your webhook"):

- headers ``X-Fal-Webhook-Request-Id``, ``X-Fal-Webhook-User-Id``,
  ``X-Fal-Webhook-Timestamp`` (Unix seconds) and ``X-Fal-Webhook-Signature`` (hex);
- the signed message is the four lines ``request id``, ``user id``, ``timestamp`` and the
  hex SHA-256 of the raw body, joined by ``\\n``, UTF-8;
- the public keys are fal's JWKS (``keys[].x``, base64url Ed25519 keys); a signature valid
  under any of them is fal's; the timestamp must be within ±5 minutes of now.

Light (no image libraries): the web server imports it. Nothing here trusts the body before
:func:`verify` said yes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)

REQUEST_ID = "X-Fal-Webhook-Request-Id"
USER_ID = "X-Fal-Webhook-User-Id"
TIMESTAMP = "X-Fal-Webhook-Timestamp"
SIGNATURE = "X-Fal-Webhook-Signature"
HEADERS = (REQUEST_ID, USER_ID, TIMESTAMP, SIGNATURE)
JWKS_TTL = 24 * 3600.0  # fal's keys change rarely; a signature no key checks refetches
JWKS_REFETCH_AFTER = 60.0  # ...but at most once a minute, whatever a forger sends
MAX_HEADER = 256


class WebhookRefused(Exception):
    """The webhook is not fal's (or is stale): answered 401, nothing changes."""


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """What fal signs: four lines, the last the hex SHA-256 of the raw body."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((request_id, user_id, timestamp, digest)).encode("utf-8")


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def public_keys(jwks: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document (others are skipped)."""
    keys: list[Ed25519PublicKey] = []
    for item in (jwks or {}).get("keys") or [] if isinstance(jwks, dict) else []:
        if not isinstance(item, dict) or item.get("kty", "OKP") != "OKP":
            continue
        if item.get("crv", "Ed25519") != "Ed25519" or not isinstance(item.get("x"), str):
            continue
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(_b64url(item["x"])))
        except (ValueError, binascii.Error):
            continue
    return keys


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[Ed25519PublicKey],
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> str:
    """The request id of a webhook fal signed, or :class:`WebhookRefused` saying why not."""
    values = {name: headers.get(name) for name in HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise WebhookRefused(f"unsigned: no {', '.join(missing)}")
    if any(len(value or "") > MAX_HEADER for value in values.values()):
        raise WebhookRefused("a signature header is too long")
    request_id, user_id = values[REQUEST_ID] or "", values[USER_ID] or ""
    timestamp, signature_hex = values[TIMESTAMP] or "", values[SIGNATURE] or ""
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookRefused("timestamp is not a number")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        raise WebhookRefused(f"timestamp {int(now - int(timestamp))} s away from now")
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise WebhookRefused("signature is not hex") from None
    message = signed_message(request_id, user_id, timestamp, body)
    for key in keys:
        try:
            key.verify(signature, message)
            return request_id
        except InvalidSignature:
            continue
    raise WebhookRefused("signature matches no key of fal's JWKS")


class Jwks:
    """fal's public keys, fetched from ``url`` and kept ``ttl`` seconds; a signature that
    matches none of them refetches (key rotation), at most once a minute."""

    def __init__(self, url: str, *, ttl: float = JWKS_TTL, timeout: float = 10.0) -> None:
        self.url = url
        self.ttl = ttl
        self.timeout = timeout
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def _fetch(self) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                self.url, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
        keys = public_keys(document)
        if not keys:
            raise ValueError("fal's JWKS has no Ed25519 key")
        self._keys, self._fetched_at = keys, time.monotonic()
        self.fetches += 1

    async def keys(self, *, fresh: bool = False) -> list[Ed25519PublicKey]:
        age = time.monotonic() - self._fetched_at
        if age < self.ttl and not (fresh and age > JWKS_REFETCH_AFTER):
            return self._keys
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age >= self.ttl or (fresh and age > JWKS_REFETCH_AFTER):
                await self._fetch()
        return self._keys

    async def verify(
        self, headers: Mapping[str, str], body: bytes, *, tolerance: float = 300.0
    ) -> str:
        """:func:`verify` with these keys (refetched once if none matches)."""
        try:
            return verify(headers, body, await self.keys(), tolerance=tolerance)
        except WebhookRefused as exc:
            if "no key" not in str(exc):
                raise
        return verify(headers, body, await self.keys(fresh=True), tolerance=tolerance)


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """What a finished model call gave: ``ok`` with its output, or a failure ``reason``
    ("refused": the provider's safety checker; "invalid-input": the input was rejected;
    "backend": anything else) with a short ``detail`` for the log."""

    request_id: str
    ok: bool
    output: dict[str, Any] | None
    reason: str | None = None
    detail: str = ""

    def as_record(self) -> dict[str, Any]:
        """What the operation's row keeps (``model_result``)."""
        return {
            "ok": self.ok,
            "output": self.output,
            "reason": self.reason,
            "detail": self.detail[:500],
        }


SAFETY_TYPES = frozenset({"content_policy_violation", "nsfw", "safety_violation"})


def failure_reason(detail: Any) -> str:
    """ "refused" (a safety refusal), "invalid-input" (a 422 on the input) or "backend"."""
    text = json.dumps(detail, ensure_ascii=False).lower() if detail is not None else ""
    items = detail.get("detail") if isinstance(detail, dict) else None
    types = {str(i.get("type", "")).lower() for i in items or [] if isinstance(i, dict)}
    if types & SAFETY_TYPES or "nsfw" in text or "content checker" in text:
        return "refused"
    if types or "422" in text:
        return "invalid-input"
    return "backend"


def output_refused(output: Mapping[str, Any]) -> bool:
    """A result whose image the safety checker blanked (``has_nsfw_concepts``)."""
    flags = output.get("has_nsfw_concepts")
    return isinstance(flags, list) and any(bool(f) for f in flags)


def outcome_of(request_id: str, status: str, output: Any, error: Any) -> ModelOutcome:
    """A :class:`ModelOutcome` from fal's terms: a webhook's ``status`` ("OK" / "ERROR"),
    ``payload`` and ``error``, or a polled result (``status`` "OK", or "ERROR" with the
    result endpoint's error body)."""
    if status == "OK" and isinstance(output, dict):
        if output_refused(output):
            return ModelOutcome(request_id, False, None, "refused", "has_nsfw_concepts")
        return ModelOutcome(request_id, True, output)
    detail = {"error": error, "payload": output}
    return ModelOutcome(
        request_id,
        False,
        None,
        failure_reason(output if output is not None else error),
        json.dumps(detail, ensure_ascii=False)[:500],
    )


def parse_webhook(body: bytes, request_id: str) -> ModelOutcome:
    """The outcome a verified webhook's body says; ValueError if it is not fal's shape or
    names another request than its signed header."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("webhook body is not an object")
    if data.get("request_id") != request_id:
        raise ValueError("webhook body names another request than its signature")
    status = data.get("status")
    if status not in ("OK", "ERROR"):
        raise ValueError(f"webhook status {status!r}")
    payload = data.get("payload")
    if status == "OK" and payload is None and data.get("payload_error"):
        return ModelOutcome(request_id, False, None, "backend", str(data["payload_error"])[:500])
    return outcome_of(request_id, status, payload, data.get("error"))


def first_image(output: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The URL of a result's image: ``images[0]`` (generators, editors) or ``image``
    (face swap, restoration, upscalers). ValueError if there is none."""
    images = output.get("images")
    image = images[0] if isinstance(images, list) and images else output.get("image")
    if not isinstance(image, dict) or not isinstance(image.get("url"), str) or not image["url"]:
        raise ValueError("fal result has no image")
    return image["url"], image
