"""`queuectl dashboard`: the web UI.  The web stack is imported here, when the command
runs, so that no other command pays for it."""

from __future__ import annotations

import socket
from typing import Optional

import click

from queuectl.cli.context import state
from queuectl.errors import InvalidInput, QueuectlError

# what a header and a cookie can carry as they are
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=")


class BindError(QueuectlError):
    """The address could not be listened on (in use, not ours)."""


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0 picks a free one).")
@click.option("--token", metavar="T|auto",
              help="Require this access token ('auto' generates one and prints it once).")
@click.option("--read-only", is_flag=True, help="Show everything, allow no action.")
def dashboard(host: str, port: int, token: Optional[str], read_only: bool) -> None:
    """Web UI: live overview, jobs, output, DLQ, workers, config.

    Serves http://127.0.0.1:5000 by default, on this machine only.  Any other
    address needs a token: open the printed address (it carries ?token=..., kept
    afterwards in a cookie) or send 'Authorization: Bearer T'.  Also serves
    /metrics (Prometheus), /api/... (the --json shapes) and /healthz.

    \b
      queuectl dashboard                          # http://127.0.0.1:5000
      queuectl dashboard --port 8080 --read-only
      queuectl dashboard --host 0.0.0.0 --token auto
      queuectl --db postgresql://db/queue dashboard --host 0.0.0.0 --token "$TOKEN"
    """
    from queuectl.web.security import is_loopback, new_token

    loopback = is_loopback(host)
    if token == "auto":
        token = new_token()
        generated = True
    else:
        generated = False
    if token is not None and (len(token) < 8 or not set(token) <= TOKEN_CHARS):
        raise InvalidInput("--token needs at least 8 characters out of letters, digits "
                           "and - _ . ~ + / = (or --token auto)")
    if not loopback and token is None:
        raise InvalidInput(f"refusing to serve {host} without a token: pass --token T "
                           "or --token auto (or bind 127.0.0.1)")
    st = state()
    queue = st.queue()
    queue.schema_version()  # a bad store fails here, with its one line and exit code
    sock = _listen(host, port)
    import uvicorn

    from queuectl.web.app import create_app

    app = create_app(queue, token=token, read_only=read_only, loopback=loopback)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if shown == '0.0.0.0' else shown}:{sock.getsockname()[1]}/"
    click.echo(f"queuectl dashboard on {url} (store: {queue.display_url})"
               + ("; read-only" if read_only else ""))
    if generated:
        click.echo(f"Access token (shown once): {token}")
        click.echo(f"Open: {url}?token={token}")
    click.echo("Press Ctrl-C to stop.", err=True)
    config = uvicorn.Config(app, log_level="debug" if st.debug else "warning",
                            access_log=st.debug, timeout_graceful_shutdown=1,
                            lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
