"""Run `newsarchive serve`'s ASGI app for a test: real uvicorn on 127.0.0.1, in a thread.

    with serving(create_app(archive)) as base:   # "http://127.0.0.1:PORT"
        urllib.request.urlopen(base + "/web/...")
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from storage import server


@contextmanager
def serving(app, host: str = "127.0.0.1"):
    sock = server.bind(host, 0)
    uv = server.server_for(app, sock, log_level="warning")
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # generous: a busy machine starts slowly
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield server.url_of(sock)
    finally:
        uv.should_exit = True
        thread.join(60)
        sock.close()
