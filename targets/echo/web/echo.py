"""Echo: GET / answers 200 "ok" at once; /healthz for the health check. No state, no deps."""

import os

from aiohttp import web


async def root(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)
    # aiohttp's run_app handles SIGTERM/SIGINT and finishes in-flight requests.
    web.run_app(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8080")),
                access_log=None, shutdown_timeout=2, print=None)


if __name__ == "__main__":
    main()
