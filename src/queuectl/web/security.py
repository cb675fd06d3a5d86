"""Who may use the dashboard and how: the access token, CSRF tokens, read-only mode
and the response headers every page carries.

* Access: without a token (a loopback bind) anyone on this machine may read and act.
  With one, a request carries it as `Authorization: Bearer T` or `X-Queuectl-Token: T`,
  or once as `?token=T`: the reply keeps it in an HttpOnly, SameSite=Strict cookie and
  redirects to the same address without it (so it leaves the address bar and history).
* CSRF: every POST carries the server's CSRF token (a form field `csrf` or the header
  `X-CSRF-Token`); pages hold it, and another origin cannot read a page.
* Host: on a loopback bind only a loopback Host header is served (DNS rebinding).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import parse_qsl, urlencode

COOKIE = "queuectl_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
MAX_FORM_BYTES = 64 * 1024

HEADERS = {
    "content-security-policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self'; connect-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the dashboard on this machine."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Access:
    token: Optional[str] = None  # required on every request when set
    read_only: bool = False
    loopback: bool = True
    csrf: str = field(default_factory=new_token)

    def token_ok(self, offered: Optional[str]) -> bool:
        if self.token is None:
            return True
        return offered is not None and hmac.compare_digest(offered.encode(),
                                                           self.token.encode())

    def csrf_ok(self, offered: Optional[str]) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(),
                                                           self.csrf.encode())


def offered_token(scope: dict[str, Any], headers: dict[str, str]) -> Optional[str]:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if "x-queuectl-token" in headers:
        return headers["x-queuectl-token"]
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


Send = Callable[[dict[str, Any]], Awaitable[None]]


class AccessMiddleware:
    """ASGI middleware: host check, token check (and the ?token= exchange), headers."""

    def __init__(self, app: Any, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.access.loopback:
            if _host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
                await _plain(send, 421, "this dashboard answers only to localhost")
                return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                          keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if given and self.access.token is not None:
            if not self.access.token_ok(given[0]):
                await _plain(send, 401, "wrong token")
                return
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("path", "/") + (f"?{rest}" if rest else "")
            await _send(send, 303, b"", [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", f"{COOKIE}={self.access.token}; HttpOnly; "
                                "SameSite=Strict; Path=/".encode("latin-1"))])
            return
        if not self.access.token_ok(offered_token(scope, headers)) \
                and scope.get("path") != "/healthz":
            await _plain(send, 401, "a token is required: open the address printed by "
                                    "`queuectl dashboard` (…/?token=T) or send "
                                    "'Authorization: Bearer T'")
            return

        started = time.perf_counter()

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                # the time to the response's start: all of a page's or an API call's work
                spent_ms = (time.perf_counter() - started) * 1000
                extra.append((b"server-timing", f"app;dur={spent_ms:.2f}".encode()))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_name(host: str) -> str:
    """The name of a Host header without its port ("[::1]:5000" -> "[::1]")."""
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.split(":", 1)[0]


async def _send(send: Send, status: int, body: bytes,
                headers: list[tuple[bytes, bytes]]) -> None:
    base = [(b"content-length", str(len(body)).encode())]
    base += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": base + headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, text: str) -> None:
    await _send(send, status, (text + "\n").encode("utf-8"),
                [(b"content-type", b"text/plain; charset=utf-8")])


async def read_form(request: Any) -> dict[str, str]:
    """An urlencoded POST body (bounded); the last value of each name."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}
