"""Who is really sending a notification: the peer address, X-Forwarded-For, YooKassa's networks.

YooKassa does not sign notifications, so the sender address is the only proof of origin (the
API re-fetch is the proof of content). The direct TCP peer is the truth; X-Forwarded-For is
believed only when that peer is one of our own reverse proxies (settings.TRUSTED_PROXIES), and
then only up to the right-most hop that is not one of them: everything left of it was written
by whoever connected to our proxy, i.e. possibly by an attacker.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web
from yookassa.domain.common.security_helper import SecurityHelper

from billing.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UntrustedSender(Exception):
    """The request does not come from a network allowed to send notifications."""

    def __init__(self, reason: str, address: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


def parse_address(value: str) -> IPAddress:
    """An address from a socket or a header; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4."""
    text = value.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443" (RFC 7239 style)
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:5555"
        text = text.split(":", 1)[0]
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(str(v).strip(), strict=False) for v in values)


def _in_any(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


@dataclass(frozen=True)
class SenderPolicy:
    """Settings turned into networks once, at startup."""

    extra_networks: tuple[IPNetwork, ...]
    trusted_proxies: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> SenderPolicy:
        return cls(
            extra_networks=_networks(settings.YOOKASSA_TRUSTED_NETWORKS),
            trusted_proxies=_networks(settings.TRUSTED_PROXIES),
        )

    def is_proxy(self, address: IPAddress) -> bool:
        return _in_any(address, self.trusted_proxies)

    def client_address(self, peer: str | None, forwarded_for: Sequence[str]) -> IPAddress:
        """The address that sent the request, as far as we can prove it.

        ``forwarded_for`` are the raw X-Forwarded-For header values, in order. Raises
        ``UntrustedSender`` when the peer is unknown or a believed header is unparseable.
        """
        if not peer:
            raise UntrustedSender("no peer address")
        try:
            address = parse_address(peer)
        except ValueError:
            raise UntrustedSender("unparseable peer address", peer) from None
        if not forwarded_for or not self.is_proxy(address):
            return address  # a header from anyone but our own proxy is ignored
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        # Walk from the proxy towards the client: each trusted proxy vouches for the hop
        # before it; the first hop that is not our proxy is the client.
        for hop in reversed(hops):
            try:
                hop_address = parse_address(hop)
            except ValueError:
                raise UntrustedSender("unparseable X-Forwarded-For hop", hop[:64]) from None
            address = hop_address
            if not self.is_proxy(hop_address):
                return hop_address
        return address  # every hop is one of our proxies: the left-most is the best we know

    def is_allowed(self, address: IPAddress) -> bool:
        """YooKassa's published networks (the SDK's list) plus our configured extras."""
        if _in_any(address, self.extra_networks):
            return True
        return bool(SecurityHelper().is_ip_trusted(str(address)))

    def check(self, request: web.BaseRequest) -> IPAddress:
        """The sender of ``request`` if it may send notifications; else ``UntrustedSender``."""
        peer = None
        if request.transport is not None:
            peername = request.transport.get_extra_info("peername")
            if isinstance(peername, tuple | list) and peername:
                peer = str(peername[0])
        address = self.client_address(peer, request.headers.getall("X-Forwarded-For", []))
        if not self.is_allowed(address):
            raise UntrustedSender("sender is not in YooKassa's networks", str(address))
        return address
