"""A TCP proxy that puts a database at a network's distance: every answer reaches the client `rtt` seconds after
the server sent it, in order. The bench measures a run and the per-order connector through it, as GesCom sits on
a LAN from the middleware (loopback answers in about 0.05 ms; a LAN round trip costs 0.3 to 1 ms).

    python -m benchmarks.latency_proxy 127.0.0.1:5432 0.5      (prints the port it listens on)
"""

from __future__ import annotations

import collections
import socket
import sys
import threading
import time


def _forward(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _shut(target)


def _delayed(source: socket.socket, target: socket.socket, rtt: float) -> None:
    """Answers held back by the round trip, in the order they came; a sender thread keeps reading meanwhile."""
    queue: collections.deque = collections.deque()
    ready = threading.Condition()

    def send() -> None:
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, data = queue.popleft()
            if data is None:
                _shut(target)
                return
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            try:
                target.sendall(data)
            except OSError:
                return

    threading.Thread(target=send, daemon=True).start()
    try:
        while data := source.recv(65536):
            with ready:
                queue.append((time.perf_counter() + rtt, data))
                ready.notify()
    except OSError:
        pass
    with ready:
        queue.append((time.perf_counter() + rtt, None))
        ready.notify()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _connection(client: socket.socket, target: tuple[str, int], rtt: float) -> None:
    server = socket.create_connection(target)
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=_forward, args=(client, server), daemon=True).start()
    _delayed(server, client, rtt)


def serve(target: tuple[str, int], rtt_ms: float, listener: socket.socket) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_connection, args=(client, target, rtt_ms / 1000), daemon=True).start()


def main() -> None:
    host, port = sys.argv[1].rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    serve((host, int(port)), float(sys.argv[2]), listener)


if __name__ == "__main__":
    main()
