"""Echo: GET / answers 200 "ok" at once; /healthz for the health check. No state, no deps.

GET /resolve looks up the name in $RESOLVE_NAME (through the container's resolver, every
time: there is no cache in the way) and answers 200 with the addresses, or 503 with the
resolver's error: the known answer for DNS faults.
"""

import os
import socket

from aiohttp import web


async def root(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def resolve(request: web.Request) -> web.Response:
    name = os.environ.get("RESOLVE_NAME", "")
    if not name:
        return web.Response(status=500, text="RESOLVE_NAME is not set\n")
    try:
        infos = await request.app.loop.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except OSError as exc:
        return web.Response(status=503, text=f"name resolution failed: {exc}\n")
    return web.Response(text=" ".join(sorted({i[4][0] for i in infos})) + "\n")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/resolve", resolve)
    # aiohttp's run_app handles SIGTERM/SIGINT and finishes in-flight requests.
    web.run_app(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8080")),
                access_log=None, shutdown_timeout=2, print=None)


if __name__ == "__main__":
    main()
