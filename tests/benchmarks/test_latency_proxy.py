"""The bench's delaying proxy: what it forwards arrives whole and in order, each answer no sooner than the round
trip it adds (a lower bound, which holds on any machine)."""

from __future__ import annotations

import socket
import threading
import time

from benchmarks.latency_proxy import serve


def echo_server() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


def test_answers_come_back_whole_in_order_and_a_round_trip_later():
    server = echo_server()
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve, args=(server.getsockname(), 5.0, listener), daemon=True).start()
    with socket.create_connection(listener.getsockname()) as client:
        for n in range(10):
            message = f"query {n} ".encode() * 2000  # several TCP segments each
            started = time.perf_counter()
            client.sendall(message)
            received = b""
            while len(received) < len(message):
                received += client.recv(65536)
            assert received == message
            assert time.perf_counter() - started >= 0.005
