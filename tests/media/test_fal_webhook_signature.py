"""fal's webhook signature as its docs state it, built here by hand (not by the code under
test): ED25519 over "request id \\n user id \\n timestamp \\n hex sha256(body)", the key a
base64url ``x`` (no padding) of a JWKS. The checker accepts exactly that; the emulator
signs exactly that."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from imaging.fal_webhook import WebhookRefused, public_keys, verify
from sandbox.fal import FalEmulator

BODY = b'{"request_id": "r-1", "status": "OK", "payload": {"images": []}}'


def jwks_of(key: Ed25519PrivateKey) -> dict:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1"}]}


def signed_by_hand(key: Ed25519PrivateKey, request_id: str, user_id: str, stamp: str) -> dict:
    message = f"{request_id}\n{user_id}\n{stamp}\n{hashlib.sha256(BODY).hexdigest()}"
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
    }


def test_a_signature_made_as_the_docs_say_is_accepted() -> None:
    key = Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()
    keys = public_keys({"keys": [*jwks_of(other)["keys"], *jwks_of(key)["keys"]]})
    headers = signed_by_hand(key, "r-1", "user-9", str(int(time.time())))
    assert verify(headers, BODY, keys) == "r-1"


@pytest.mark.parametrize(
    "change",
    ["body", "request id", "user id", "timestamp", "old", "future", "no signature", "not hex"],
)
def test_anything_changed_is_refused(change: str) -> None:
    key = Ed25519PrivateKey.generate()
    keys = public_keys(jwks_of(key))
    now = int(time.time())
    headers = signed_by_hand(key, "r-1", "user-9", str(now))
    body = BODY
    if change == "body":
        body = BODY.replace(b"OK", b"ERROR")
    elif change == "request id":
        headers["X-Fal-Webhook-Request-Id"] = "r-2"
    elif change == "user id":
        headers["X-Fal-Webhook-User-Id"] = "user-8"
    elif change == "timestamp":
        headers["X-Fal-Webhook-Timestamp"] = str(now + 1)
    elif change == "old":
        headers = signed_by_hand(key, "r-1", "user-9", str(now - 301))
    elif change == "future":
        headers = signed_by_hand(key, "r-1", "user-9", str(now + 301))
    elif change == "no signature":
        del headers["X-Fal-Webhook-Signature"]
    elif change == "not hex":
        headers["X-Fal-Webhook-Signature"] = "zz" * 64
    with pytest.raises(WebhookRefused):
        verify(headers, body, keys)


def test_the_emulator_signs_as_the_docs_say() -> None:
    emu = FalEmulator(key="k")
    headers = emu.sign("r-1", BODY)
    stamp = headers["X-Fal-Webhook-Timestamp"]
    message = f"r-1\n{headers['X-Fal-Webhook-User-Id']}\n{stamp}\n"
    message += hashlib.sha256(BODY).hexdigest()
    [key] = public_keys(emu.jwks())
    key.verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message.encode())
    assert "=" not in emu.jwks()["keys"][0]["x"]  # base64url without padding, as JWK wants
