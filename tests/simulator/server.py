"""A faithful, stateful PrestaShop legacy webservice (`/api/`) over real HTTP on loopback.

ShopSimulator puts together what the other modules of this package simulate:

* shop.py: the shop's tables, version and clock;
* resources/: one module per resource, what PrestaShop's class and back office do to it (its webservice write,
  state changes, mails, threads, what moves date_upd), and the hooks the generic webservice uses;
* webservice.py, reads.py, writes.py: the webservice request (authentication, permissions, display / filter /
  sort / limit, POST / PUT / PATCH), render.py its output, byte for byte as the recorded 8.1.2 shop;
* faults.py: injected faults, in the webservice, the network and the host in front of it;
* recorded.py: the shop PrestaShop 8.1.2 was recorded on (ShopSimulator.recorded_8_1_2()).

Where each behaviour comes from is said next to it: "recorded" names an exchange of
recordings/prestashop-8.1.2/transcripts.jsonl (checked by tests/integration/test_simulator_conformance.py),
"date_upd.md row N" / "order-page-messages.md" the measurements beside it, "§" a section of the webservice
reference (prestashop-webservice.md); "Simulator choice" marks what neither says.
"""

from __future__ import annotations

import io
import re
import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from .faults import CHAOS_KINDS, FAULT_KINDS, Faults
from .php import php_params
from .protocol import Ctx, Response, WsError
from .shop import Shop
from .webservice import REALM, Webservice

MAX_BODY = 5 * 1024 * 1024

__all__ = ["ShopSimulator", "FAULT_KINDS", "CHAOS_KINDS", "REALM", "WsError"]


class ShopSimulator(Webservice, Faults, Shop):
    """A PrestaShop shop whose webservice answers over HTTP on 127.0.0.1.

    State is plain data, readable and writable by tests (see Shop); the webservice key, its `permissions`
    and the shop's switches are attributes; every request is logged in `requests`. All request handling
    runs under `lock`."""

    def __init__(
        self,
        version: str = "8.1.5",
        key: str = "A" * 32,
        languages=(1, 2),
        *,
        shop_name: str = "Sim",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        timezone: str | None = None,
    ):
        Shop.__init__(self, version, languages, shop_name=shop_name, seed=seed, timezone=timezone)
        self._init_faults()
        self.key = key
        self.host, self.port = host, port
        self.verbose = False  # log each request on stderr (python -m tests.simulator)
        self.latency = 0.0  # seconds each request costs before it is handled (a real shop bootstraps PHP each time)
        # Called with the request entry after a write was applied and before its answer is sent (crash tests).
        self.after_write = None
        self.webservice_enabled = True  # PS_WEBSERVICE; off → 503 code 22
        self.key_active = True  # off → 401 code 20
        self.permissions: dict[str, set[str]] = self.default_permissions()
        self.key_shops: set[int] | None = None  # shops the key is enabled on (None = all); else 403 code 132
        self.requests: list[dict] = []
        self.internal_errors: list[str] = []  # simulator bugs (answered 500 code 15); tests may assert it is empty
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set = set()

    @classmethod
    def recorded_8_1_2(cls, key: str = "A" * 32, **options) -> ShopSimulator:
        """The shop the 8.1.2 recording starts from (recorded.py): orders 1-5 of customer 2, carrier 2
        without a tracking URL, the recorded key's permissions, PS_TIMEZONE Europe/Paris."""
        from .recorded import recorded_8_1_2

        return recorded_8_1_2(cls, key, **options)

    def default_permissions(self) -> dict[str, set[str]]:
        """What a sync key needs (§9.2): GET everywhere it reads, POST order_histories and the messages it
        writes (legacy `messages`; customer_threads / customer_messages, what the order page shows since 1.7.7,
        §9 15b), GET customers (a thread carries the customer's email), PUT (and PATCH on 8+) order_carriers."""
        read = {"GET", "HEAD"}
        carrier_write = read | {"PUT"} | ({"PATCH"} if self.supports_patch else set())
        return {
            "orders": set(read),
            "order_carriers": carrier_write,
            "order_histories": read | {"POST"},
            "order_states": set(read),
            "carriers": set(read),
            "configurations": set(read),
            "customers": set(read),
            "messages": read | {"POST"},
            "customer_threads": read | {"POST"},
            "customer_messages": read | {"POST"},
        }

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> ShopSimulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.sim = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"shop-simulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops promptly: pending "timeout" faults are woken up, open keep-alive connections closed."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self.lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> ShopSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The shop base URL; the webservice is under `url + "api/"`."""
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    # --- log -----------------------------------------------------------------------------------------------

    def reset_log(self) -> None:
        """Clears `requests` (not the shop state, not `mails`)."""
        with self.lock:
            self.requests.clear()

    def requests_to(self, resource: str, method: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["resource"] == resource and (method is None or r["effective_method"] == method.upper())]

    # --- HTTP entry point ----------------------------------------------------------------------------------

    def _track(self, connection, add: bool) -> None:
        with self.lock:
            (self._connections.add if add else self._connections.discard)(connection)

    def _serve(self, handler: _Handler) -> None:
        ctx = Ctx()
        try:
            raw_body = handler.read_body()
        except WsError as error:
            handler.send(Response(error.status, (error.message + "\n").encode(), "text/plain; charset=utf-8", {"Connection": "close"}), None)
            return
        split = urlsplit(handler.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        path = unquote(split.path)
        ctx.http_method = ctx.method = handler.command
        ctx.body = raw_body.decode("utf-8", errors="replace")
        ctx.params = php_params(pairs)
        entry = {
            "method": handler.command,
            "path": split.path,
            "resource": None,
            "id": None,
            "query": dict(pairs),
            "id_shop": dict(pairs).get("id_shop"),  # the shop context asked for (multistore), None when not sent
            "body": ctx.body,
            "effective_method": handler.command,
            "status": None,
            "fault": None,
            "time": time.time(),
        }
        match = re.fullmatch(r"/api(?:/(.*))?", path)
        if match:
            segments = (match.group(1) or "").split("/")
            ctx.resource = segments[0]
            ctx.url_id = segments[1] if len(segments) > 1 else ""
            entry["resource"] = ctx.resource
            entry["id"] = int(ctx.url_id) if ctx.url_id.isdigit() else (ctx.url_id or None)
        with self.lock:
            self.requests.append(entry)
        host_answer = self.host_answer(handler.command, handler.headers.get("Host") or f"{self.host}:{self.port}", handler.path)
        if host_answer is not None:  # the web server answered: PrestaShop never ran
            with self.lock:
                entry["status"], entry["fault"] = host_answer.status, "redirect" if host_answer.status < 400 else "waf"
            headers = dict(host_answer.headers)
            handler.send(Response(host_answer.status, host_answer.body, headers.pop("Content-Type"), headers), None)
            return
        if self.latency:
            time.sleep(self.latency)  # outside the lock: concurrent requests overlap, as on a real server
        if not match:
            response = self._shop_front(path)
        else:
            try:
                response = self.api(ctx, handler.headers)
            except Exception:  # a simulator bug: make it visible
                text = traceback.format_exc()
                with self.lock:
                    self.internal_errors.append(text)
                response = self.error_response(ctx, WsError(500, 15, "[Simulator internal error] " + text.splitlines()[-1]))
        with self.lock:
            entry["effective_method"] = ctx.method
            entry["status"] = None if response.reset else response.status
            entry["fault"] = ctx.fault["kind"] if ctx.fault else None
        hook = self.after_write
        if hook is not None and entry["effective_method"] in ("POST", "PUT", "PATCH") and (response.status or 0) < 300:
            hook(entry)
        handler.send(response, ctx)

    def _shop_front(self, path: str) -> Response:
        if path in ("", "/"):
            return Response(200, f"<html><body><h1>{self.shop_name}</h1></body></html>\n".encode(), "text/html; charset=utf-8")
        return Response(404, b"<html><body><h1>404 Not Found</h1></body></html>\n", "text/html; charset=utf-8")


# ------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ------------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under a burst of parallel clients (1 s retransmit)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # a client going away is not worth a traceback
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are dropped after a minute

    def version_string(self) -> str:
        return "Apache"

    @property
    def sim(self) -> ShopSimulator:
        return self.server.sim  # type: ignore[attr-defined]

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.sim._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.sim._track(self.connection, False)

    def log_message(self, format, *args):
        if self.sim.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int((self.rfile.readline(1024).split(b";")[0].strip() or b"0"), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise WsError(413, 0, "Request Entity Too Large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            raise WsError(400, 0, "Bad Content-Length") from None
        if size > MAX_BODY or size < 0:
            self.close_connection = True
            raise WsError(413, 0, "Request Entity Too Large")
        return self.rfile.read(size)

    def _any(self):
        self.sim._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

    def send(self, response: Response, ctx: Ctx | None) -> None:
        if response.delay:
            self.sim._stopping.wait(response.delay)  # bounded, and woken up by stop()
            if self.sim._stopping.is_set():
                response.reset = True
        if response.reset:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            for stream in (self.rfile, self.wfile):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                self.connection.close()  # SO_LINGER 0: the peer gets a RST, no answer at all
            except OSError:
                pass
            self.wfile = io.BytesIO()  # handle_one_request() flushes wfile after us
            return
        body = response.body or b""
        status = response.status
        local_sha1 = self.headers.get("Local-Content-Sha1")
        if (
            ctx is not None
            and status == 200
            and body
            and self.command in ("GET", "HEAD")
            and local_sha1
            and local_sha1 == response.headers.get("Content-Sha1")
        ):
            status, body = 304, b""  # §2.6: unchanged content
        try:
            self.send_response(status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.command != "HEAD":  # recorded (head_order_2): Apache sends no Content-Length on HEAD
                self.send_header("Content-Length", str(len(body)))
            self._headers_buffer.append(b"\r\n")  # end_headers, with the body in the same write
            if self.command != "HEAD" and status != 304:
                self._headers_buffer.append(body)
            self.flush_headers()
        except OSError:  # the client went away (e.g. it timed out first)
            self.close_connection = True
