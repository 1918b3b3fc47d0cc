"""free_port: below the kernel's ephemeral range, above Ray's worker ports, and not held by any socket."""

from __future__ import annotations

import socket

import pytest

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


def test_joining_an_address_where_no_head_answers_is_one_line_naming_it() -> None:
    from pipeline.runtime import ClusterError, free_port
    from pipeline.runtime._session import check_head_answers

    with socket.socket() as listening:  # something answers: the join goes on to Ray
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_head_answers(f"127.0.0.1:{listening.getsockname()[1]}", timeout=5)
        check_head_answers(f"ray://127.0.0.1:{listening.getsockname()[1]}", timeout=5)
    port = free_port()
    with pytest.raises(ClusterError) as refused:
        check_head_answers(f"127.0.0.1:{port}", timeout=2)
    assert str(refused.value) == (
        f"ray.address = '127.0.0.1:{port}': no Ray head answered there within ray.connect_timeout_s = 2 s "
        "(Connection refused); start one with `ray start --head`, or give the address it printed"
    )
    check_head_answers("auto", timeout=2)  # left to Ray, which says at once when there is no cluster
