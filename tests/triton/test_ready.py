"""`server.ready` on whatever answers the port: not up (False), never an exception."""

from __future__ import annotations

import socket
import threading

from edgeseg.triton.server import ready


def test_a_port_held_by_something_else_is_not_ready():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]

        def answer_garbage():
            conn, _ = s.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"garbage that is no HTTP status line\r\n\r\n")

        t = threading.Thread(target=answer_garbage)
        t.start()
        assert ready(f"127.0.0.1:{port}") is False
        t.join(5)
    assert ready(f"127.0.0.1:{port}") is False  # nobody listening
