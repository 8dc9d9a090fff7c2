"""``free_port``: a port for a server another process binds a moment later.

The chaos suite's web server once failed with "address already in use" on a port picked by
``bind(port 0)``: such a port comes from the kernel's ephemeral range, where any process's
next outgoing connection can be given it before the server binds.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from sandbox import _common
from sandbox._common import free_port, port_is_free


@pytest.fixture
def claims(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "_CLAIMS", tmp_path)
    monkeypatch.setattr(_common, "_given", set())
    return tmp_path


class Picks:
    """Stands in for the random source: hands out the given ports in order."""

    def __init__(self, *ports: int) -> None:
        self.ports = list(ports)

    def randrange(self, start: int, stop: int) -> int:
        port = self.ports.pop(0)
        assert start <= port < stop
        return port


def test_ports_come_from_below_the_ephemeral_range_and_are_never_given_twice(claims):
    low = _common._ephemeral_low()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(_common._FIRST_PORT <= port < low for port in ports)
    assert sorted(int(p.name) for p in claims.iterdir()) == sorted(ports)
    assert all(port_is_free("127.0.0.1", port) for port in ports)


def test_a_port_claimed_by_another_process_or_listened_on_is_skipped(claims, monkeypatch):
    listened = free_port()
    assert listened not in (20001, 20002)
    monkeypatch.setattr(_common, "_given", set())
    (claims / str(listened)).unlink()
    (claims / "20001").touch()  # another process's claim, made a moment ago
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", listened))
        busy.listen()
        monkeypatch.setattr(_common, "_random", Picks(20001, listened, 20002))
        assert free_port() == 20002


def test_an_old_claim_is_taken_again(claims, monkeypatch):
    old = claims / "20003"
    old.touch()
    stale = time.time() - _common._CLAIM_SECONDS - 1
    os.utime(old, (stale, stale))
    monkeypatch.setattr(_common, "_random", Picks(20003))
    assert free_port() == 20003
    assert time.time() - old.stat().st_mtime < _common._CLAIM_SECONDS


def test_a_port_given_in_this_process_is_not_given_again_even_without_its_claim(
    claims, monkeypatch
):
    monkeypatch.setattr(_common, "_random", Picks(20004, 20004, 20005))
    assert free_port() == 20004
    (claims / "20004").unlink()
    assert free_port() == 20005
