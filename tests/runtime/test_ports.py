"""free_port: below the kernel's ephemeral range, above Ray's worker ports, and not held by any socket; a
port's turn between jobs of one machine."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pipeline.runtime._ports import _bindable, _first_ephemeral_port, free_port, port_is_free, port_turn


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


def test_a_port_taken_by_a_listener_is_not_free_and_jobs_take_turns_checking_one() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free("127.0.0.1", port)
    order: list[str] = []
    with port_turn(port):
        second = threading.Thread(target=lambda: _take_turn(port, order))
        second.start()
        time.sleep(0.5)
        order.append("first done")  # the second job is still waiting for its turn
    second.join(timeout=10)
    assert order == ["first done", "second"]
    with port_turn(port):  # a holder that never lets go: the next job goes on after its wait
        started = time.monotonic()
        _take_turn(port, order, wait_s=0.3)
        assert 0.3 <= time.monotonic() - started < 5 and order[-1] == "second"


def _take_turn(port: int, order: list[str], wait_s: float = 120.0) -> None:
    with port_turn(port, wait_s=wait_s):
        order.append("second")
