"""A small payments ledger: accounts, idempotent transfers, an audit. Redis behind Sentinel.

Modules: `config` (environment → frozen settings), `scripts` (the Lua that moves money),
`datatier` (finding the primary through Sentinel), `store` (ledger operations with a bounded
retry budget), `metrics` (Prometheus text), `web` (aiohttp routes, readiness, graceful drain).
`config`, `metrics` and `retry` import nothing outside the standard library, so they can be
unit-tested without aiohttp or redis installed.
"""
