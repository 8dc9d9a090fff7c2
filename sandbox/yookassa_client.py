"""Async client for the YooKassa emulator's control API.

async with YooKassaEmulatorClient(url) as yk:
    [payment] = await yk.payments()
    await yk.mark_succeeded(payment["id"])
    note = await yk.notify(payment["id"])          # POSTs payment.succeeded to the webhook
    assert note["status"] == 200
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp


class EmulatorError(RuntimeError):
    def __init__(self, status: int, payload: Any) -> None:
        message = payload.get("error") if isinstance(payload, dict) else payload
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.payload = payload


class YooKassaEmulatorClient:
    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    @property
    def api_url(self) -> str:
        """What to pass as ``Configuration.configure(..., api_url=...)``."""
        return f"{self.base_url}/v3"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> YooKassaEmulatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(
        self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        async with self.session.request(
            method, self.base_url + path, json=json, params=query
        ) as resp:
            payload = await resp.json(content_type=None)
            if resp.status != 200:
                raise EmulatorError(resp.status, payload)
            return payload

    @staticmethod
    def _notify_opts(
        notify: bool,
        retry: bool,
        url: str | None,
        wait: bool,
        max_attempts: int | None,
        backoff: float | None,
    ) -> dict[str, Any]:
        opts: dict[str, Any] = {"notify": notify, "retry": retry, "wait": wait}
        if url:
            opts["url"] = url
        if max_attempts is not None:
            opts["max_attempts"] = max_attempts
        if backoff is not None:
            opts["backoff"] = backoff
        return opts

    # --- the payer ----------------------------------------------------------------------
    async def mark_succeeded(
        self,
        payment_id: str,
        *,
        notify: bool = False,
        retry: bool = False,
        force: bool = False,
        url: str | None = None,
        wait: bool = False,
        max_attempts: int | None = None,
        backoff: float | None = None,
    ) -> dict[str, Any]:
        """Payment paid and captured. Returns the payment (and "notification" if notify)."""
        body = {
            **self._notify_opts(notify, retry, url, wait, max_attempts, backoff),
            "force": force,
        }
        return await self._request("POST", f"/_emu/payments/{payment_id}/succeed", body)

    async def mark_waiting_for_capture(
        self,
        payment_id: str,
        *,
        notify: bool = False,
        retry: bool = False,
        url: str | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        body = self._notify_opts(notify, retry, url, wait, None, None)
        return await self._request(
            "POST", f"/_emu/payments/{payment_id}/waiting_for_capture", body
        )

    async def mark_canceled(
        self,
        payment_id: str,
        reason: str = "expired_on_confirmation",
        *,
        party: str | None = None,
        notify: bool = False,
        retry: bool = False,
        force: bool = False,
        url: str | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Cancel with cancellation_details {party, reason}; party defaults to "yoo_money"
        ("payment_network" for card/issuer reasons)."""
        if party is None:
            party = (
                "payment_network"
                if reason
                in {
                    "card_expired",
                    "insufficient_funds",
                    "call_issuer",
                    "issuer_unavailable",
                    "invalid_card_number",
                    "invalid_csc",
                    "general_decline",
                    "payment_method_limit_exceeded",
                    "payment_method_restricted",
                    "country_forbidden",
                    "3d_secure_failed",
                }
                else "yoo_money"
            )
        body = {
            **self._notify_opts(notify, retry, url, wait, None, None),
            "reason": reason,
            "party": party,
            "force": force,
        }
        return await self._request("POST", f"/_emu/payments/{payment_id}/cancel", body)

    async def pay(self, payment_id: str, *, cancel: bool = False) -> str:
        """Press "Оплатить" (or "Отменить") on the checkout page like a browser would.
        Returns the URL the page redirected to (the return_url) or the final page URL."""
        action = "cancel" if cancel else "pay"
        async with self.session.post(
            f"{self.base_url}/checkout/{payment_id}/{action}", allow_redirects=False
        ) as resp:
            if resp.status in (301, 302, 303, 307):
                return resp.headers["Location"]
            if resp.status != 200:
                raise EmulatorError(resp.status, await resp.text())
            return str(resp.url)

    async def checkout_html(self, payment_id: str) -> str:
        async with self.session.get(f"{self.base_url}/checkout/{payment_id}") as resp:
            return await resp.text()

    # --- notifications ------------------------------------------------------------------
    async def notify(
        self,
        payment_id: str,
        event: str | None = None,
        *,
        retry: bool = False,
        url: str | None = None,
        wait: bool = False,
        max_attempts: int | None = None,
        backoff: float | None = None,
        object_override: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST the notification for the payment's current state (or ``event``, e.g.
        "payment.succeeded", "refund.succeeded") to the webhook. Returns the notification
        record: {id, event, url, body, status, delivered, attempts: [{status, ...}], done}.
        ``retry``: re-send on non-200 with back-off (``wait`` waits for the last attempt)."""
        body: dict[str, Any] = {
            "event": event,
            "retry": retry,
            "wait": wait,
            "url": url,
            "max_attempts": max_attempts,
            "backoff": backoff,
            "object_override": object_override,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return await self._request("POST", f"/_emu/payments/{payment_id}/notify", body)

    async def notify_raw(self, body: dict[str, Any], *, url: str | None = None) -> dict[str, Any]:
        """POST an arbitrary (e.g. forged) notification body to the webhook."""
        return await self._request(
            "POST", "/_emu/notify", {"body": body, **({"url": url} if url else {})}
        )

    async def resend(self, notification_id: int, *, retry: bool = False) -> dict[str, Any]:
        """Send an old notification again, byte for byte (a duplicate)."""
        return await self._request(
            "POST", f"/_emu/notifications/{notification_id}/resend", {"retry": retry}
        )

    async def notifications(self, payment_id: str | None = None) -> list[dict[str, Any]]:
        return (
            await self._request("GET", "/_emu/notifications", params={"object_id": payment_id})
        )["notifications"]

    # --- inspection ---------------------------------------------------------------------
    async def payments(self) -> list[dict[str, Any]]:
        return (await self._request("GET", "/_emu/payments"))["payments"]

    async def payment(self, payment_id: str) -> dict[str, Any]:
        """{payment, capture, request, idempotence_key, receipt, refunds}."""
        return await self._request("GET", f"/_emu/payments/{payment_id}")

    async def refunds(self) -> list[dict[str, Any]]:
        return (await self._request("GET", "/_emu/refunds"))["refunds"]

    async def finish_refund(
        self, refund_id: str, *, cancel: bool = False, notify: bool = False, wait: bool = False
    ) -> dict[str, Any]:
        """A pending refund (``configure(refund_status="pending")``) goes through, or is
        canceled; ``notify``: YooKassa's refund.succeeded goes to the webhook."""
        action = "cancel" if cancel else "succeed"
        body = self._notify_opts(notify, False, None, wait, None, None)
        return await self._request("POST", f"/_emu/refunds/{refund_id}/{action}", body)

    async def requests(
        self, path: str | None = None, *, method: str | None = None, operation: str | None = None
    ) -> list[dict[str, Any]]:
        """API requests received: [{seq, method, path, headers: {Idempotence-Key,
        Authorization (bool), ...}, auth_ok, body, status, operation, fault?}]."""
        return (
            await self._request(
                "GET",
                "/_emu/requests",
                params={"path": path, "method": method, "operation": operation},
            )
        )["requests"]

    # --- faults and config --------------------------------------------------------------
    async def fail_next(
        self, count: int = 1, *, only: str | None = None, status: int = 500
    ) -> None:
        """The next ``count`` API calls (``only``: create | get | list | capture | cancel |
        refund | get_refund) answer ``status`` with YooKassa's error JSON."""
        await self._request(
            "POST",
            "/_emu/faults",
            {"kind": "error", "count": count, "only": only, "status": status},
        )

    async def delay_next(self, seconds: float, count: int = 1, *, only: str | None = None) -> None:
        """Delay the next calls by ``seconds`` before they are processed."""
        await self._request(
            "POST",
            "/_emu/faults",
            {"kind": "delay", "count": count, "only": only, "delay": seconds},
        )

    async def drop_next(
        self, count: int = 1, *, only: str | None = None, after_processing: bool = False
    ) -> None:
        """Drop the connection without an answer; ``after_processing=True`` first does the
        work (the payment IS created) — the lost-response case idempotence keys exist for."""
        await self._request(
            "POST",
            "/_emu/faults",
            {"kind": "drop_after" if after_processing else "drop", "count": count, "only": only},
        )

    async def reset_faults(self) -> None:
        await self._request("DELETE", "/_emu/faults")

    async def configure(
        self,
        *,
        webhook_url: str | None = None,
        public_url: str | None = None,
        auto_notify: bool | None = None,
        refund_status: str | None = None,
    ) -> dict[str, Any]:
        """``refund_status``: what new refunds become (succeeded, pending, canceled)."""
        body = {
            "webhook_url": webhook_url,
            "public_url": public_url,
            "auto_notify": auto_notify,
            "refund_status": refund_status,
        }
        return await self._request(
            "POST", "/_emu/config", {k: v for k, v in body.items() if v is not None}
        )

    async def set_webhook_url(self, url: str | None) -> None:
        await self._request("POST", "/_emu/config", {"webhook_url": url or ""})

    async def reset(self) -> None:
        await self._request("POST", "/_emu/reset")

    @staticmethod
    def payment_id_from_url(confirmation_url: str) -> str:
        """The payment id inside a confirmation_url the bot sent to a user."""
        match = re.search(r"/checkout/([0-9a-f-]{36})", confirmation_url)
        if not match:
            raise ValueError(f"not a sandbox checkout URL: {confirmation_url}")
        return match.group(1)
