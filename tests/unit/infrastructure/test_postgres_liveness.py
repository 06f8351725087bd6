"""The checkout liveness check reads the socket without a round trip, for any descriptor number."""

import os
import resource
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from runlane.domain.errors import RunlaneError
from runlane.infrastructure.postgres.liveness import check_pre_ping, connection_is_dead


@dataclass
class _PgConn:
    socket: int


@dataclass
class _Connection:
    """The three attributes of a psycopg connection the check reads."""

    pgconn: _PgConn
    closed: bool = False
    broken: bool = False


@contextmanager
def _socket_pair(at_least: int = 0) -> Iterator[tuple[socket.socket, int]]:
    """A connected pair; the local end's descriptor is moved to ``at_least`` or above if asked."""
    local, peer = socket.socketpair()
    fd = local.fileno()
    moved = None
    if at_least:
        moved = os.dup2(fd, at_least)
        fd = moved
    try:
        yield peer, fd
    finally:
        if moved is not None:
            os.close(moved)
        local.close()
        peer.close()


def test_an_idle_connection_is_alive_and_one_the_server_wrote_to_or_closed_is_dead() -> None:
    with _socket_pair() as (peer, fd):
        assert connection_is_dead(_Connection(_PgConn(fd))) is False
        peer.sendall(b"E")  # e.g. the FATAL message of a terminating backend
        assert connection_is_dead(_Connection(_PgConn(fd))) is True
    with _socket_pair() as (peer, fd):
        peer.close()
        assert connection_is_dead(_Connection(_PgConn(fd))) is True


def test_known_closed_or_broken_connections_are_dead_without_looking() -> None:
    assert connection_is_dead(_Connection(_PgConn(-1), closed=True)) is True
    assert connection_is_dead(_Connection(_PgConn(-1), broken=True)) is True


def test_descriptors_above_1024_work() -> None:
    """select() cannot watch fds >= FD_SETSIZE (1024); busy processes have such fds."""
    target = 1500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= target and (hard == resource.RLIM_INFINITY or hard > target):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target + 1, hard))  # as a busy server would
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= target:
        pytest.skip(f"the hard file descriptor limit ({hard}) cannot place a socket at {target}")
    with _socket_pair(at_least=target) as (peer, fd):
        assert fd >= 1024
        assert connection_is_dead(_Connection(_PgConn(fd))) is False
        peer.sendall(b"E")
        assert connection_is_dead(_Connection(_PgConn(fd))) is True


@pytest.mark.parametrize("value", ["socket", True, False])
def test_pre_ping_accepts_socket_and_booleans(value: object) -> None:
    assert check_pre_ping(value) == value


@pytest.mark.parametrize("value", [1, 0, "yes", None, "query"])
def test_pre_ping_rejects_anything_else(value: object) -> None:
    with pytest.raises(RunlaneError) as info:
        check_pre_ping(value)
    assert info.value.code.value == "configuration_invalid"
