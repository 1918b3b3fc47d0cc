"""free_port: below the kernel's ephemeral range, above Ray's worker ports, and not held by any socket."""

from __future__ import annotations

import socket

from pipeline.runtime._ports import _bindable, _first_ephemeral_port, free_port


def test_free_ports_come_from_below_the_ephemeral_range_and_can_be_bound_on_every_interface() -> None:
    ports = {free_port() for _ in range(20)}
    assert all(20000 <= port < _first_ephemeral_port() for port in ports), ports
    assert len(ports) > 1  # random, so two servers started one after the other do not collide
    for port in ports:
        with socket.socket() as server:
            server.bind(("", port))


def test_a_port_a_listening_or_connected_socket_holds_is_not_free() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        assert not _bindable(listener.getsockname()[1])
        with socket.create_connection(listener.getsockname()) as client:
            # the client's local port comes from the ephemeral range: held while connected
            assert not _bindable(client.getsockname()[1])
