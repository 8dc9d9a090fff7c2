"""Who may send a notification: YooKassa's networks, our extras, X-Forwarded-For only via
our own proxies."""

from __future__ import annotations

import ipaddress

import pytest

from billing.models import LedgerKind, PaymentStatus
from billing.settings import Settings
from tests.web.conftest import Stack, StackFactory
from web.security import SenderPolicy, UntrustedSender

YOOKASSA_ADDRESS = "185.71.76.5"  # inside 185.71.76.0/27, one of YooKassa's networks


def policy(**values: object) -> SenderPolicy:
    return SenderPolicy.from_settings(Settings(_env_file=None, **values))  # type: ignore[call-arg, arg-type]


async def _succeeded_payment(stack: Stack, telegram_id: int) -> tuple[int, dict]:
    user_id, _ = await stack.new_user(telegram_id)
    started = await stack.topup(user_id, amount=20_000)
    payment = (await stack.yk.mark_succeeded(started.yookassa_payment_id))["payment"]
    body = {"type": "notification", "event": "payment.succeeded", "object": payment}
    return user_id, body


async def test_the_default_settings_refuse_localhost(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    stack = await make_stack(YOOKASSA_TRUSTED_NETWORKS="")
    user_id, body = await _succeeded_payment(stack, 6001)

    status, answer = await stack.post_json(body)

    assert status == 403 and answer == {"status": "forbidden"}
    assert await stack.balance(user_id) == 0
    assert await stack.ledger_count(LedgerKind.TOPUP) == 0
    assert any("403" in r.message and "127.0.0.1" in r.message for r in caplog.records)


async def test_untrusted_sender_is_refused_and_nothing_is_credited(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(YOOKASSA_TRUSTED_NETWORKS="10.9.8.0/24")
    user_id, body = await _succeeded_payment(stack, 6002)
    status, _ = await stack.post_json(body)
    assert status == 403
    assert await stack.balance(user_id) == 0
    row = await stack.payment_row(1)
    assert row.status == PaymentStatus.PENDING and row.credited_at is None
    # Not even the YooKassa API was asked: refused before the body was read.
    assert not await stack.yk.requests(operation="get")


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    stack = await make_stack(YOOKASSA_TRUSTED_NETWORKS="", TRUSTED_PROXIES="")
    user_id, body = await _succeeded_payment(stack, 6003)

    status, _ = await stack.post_json(body, headers={"X-Forwarded-For": YOOKASSA_ADDRESS})

    assert status == 403
    assert await stack.balance(user_id) == 0
    assert any("127.0.0.1" in r.message for r in caplog.records if "403" in r.message)


async def test_forwarded_for_from_a_trusted_proxy_is_believed(make_stack: StackFactory) -> None:
    stack = await make_stack(YOOKASSA_TRUSTED_NETWORKS="", TRUSTED_PROXIES="127.0.0.1/32")
    user_id, body = await _succeeded_payment(stack, 6004)

    status, answer = await stack.post_json(body, headers={"X-Forwarded-For": YOOKASSA_ADDRESS})

    assert (status, answer) == (200, {"status": "credited"})
    assert await stack.balance(user_id) == 20_000


async def test_a_forged_hop_before_our_proxy_does_not_help(make_stack: StackFactory) -> None:
    """The client wrote "185.71.76.5" itself; our proxy appended the real address."""
    stack = await make_stack(YOOKASSA_TRUSTED_NETWORKS="", TRUSTED_PROXIES="127.0.0.1/32")
    user_id, body = await _succeeded_payment(stack, 6005)

    status, _ = await stack.post_json(
        body, headers={"X-Forwarded-For": f"{YOOKASSA_ADDRESS}, 203.0.113.9"}
    )

    assert status == 403
    assert await stack.balance(user_id) == 0


async def test_a_trusted_proxy_without_forwarded_for_is_judged_by_its_own_address(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(YOOKASSA_TRUSTED_NETWORKS="", TRUSTED_PROXIES="127.0.0.1/32")
    _, body = await _succeeded_payment(stack, 6006)
    status, _ = await stack.post_json(body)
    assert status == 403


# --- the policy on its own -------------------------------------------------------------


def test_yookassa_networks_come_from_the_sdk() -> None:
    p = policy()
    assert p.is_allowed(ipaddress.ip_address("185.71.76.5"))
    assert p.is_allowed(ipaddress.ip_address("77.75.156.11"))
    assert p.is_allowed(ipaddress.ip_address("2a02:5180:0:1509::1"))
    assert not p.is_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not p.is_allowed(ipaddress.ip_address("77.75.156.12"))


def test_extra_networks_are_added_not_replacing() -> None:
    p = policy(YOOKASSA_TRUSTED_NETWORKS="10.0.0.0/8")
    assert p.is_allowed(ipaddress.ip_address("10.1.2.3"))
    assert p.is_allowed(ipaddress.ip_address("185.71.77.1"))
    assert not p.is_allowed(ipaddress.ip_address("11.0.0.1"))


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    p = policy(TRUSTED_PROXIES="10.0.0.0/8")
    # client -> proxy 10.0.0.7 -> proxy 10.0.0.1 (the peer)
    assert str(p.client_address("10.0.0.1", ["185.71.76.5, 10.0.0.7"])) == "185.71.76.5"
    # several headers count as one list
    assert str(p.client_address("10.0.0.1", ["1.2.3.4", "185.71.76.5", "10.0.0.7"])) == (
        "185.71.76.5"
    )
    # a peer that is not a proxy: the header is ignored
    assert str(p.client_address("192.0.2.1", ["185.71.76.5"])) == "192.0.2.1"
    # only proxies in the chain: the left-most
    assert str(p.client_address("10.0.0.1", ["10.0.0.9, 10.0.0.7"])) == "10.0.0.9"


def test_addresses_are_normalized() -> None:
    p = policy(TRUSTED_PROXIES="127.0.0.1/32")
    assert str(p.client_address("::ffff:185.71.76.5", [])) == "185.71.76.5"
    assert str(p.client_address("127.0.0.1", ["[2a02:5180:0:1509::1]:443"])) == (
        "2a02:5180:0:1509::1"
    )
    assert str(p.client_address("127.0.0.1", ["185.71.76.5:5555"])) == "185.71.76.5"


@pytest.mark.parametrize("header", ["not-an-ip", "185.71.76.5, evil", "999.1.1.1"])
def test_an_unparseable_believed_hop_is_refused(header: str) -> None:
    p = policy(TRUSTED_PROXIES="127.0.0.1/32")
    with pytest.raises(UntrustedSender):
        p.client_address("127.0.0.1", [header])


def test_no_peer_is_refused() -> None:
    with pytest.raises(UntrustedSender):
        policy().client_address(None, [])
