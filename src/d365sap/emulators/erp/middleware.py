"""The single place between the network and the emulated ECC.

Every request passes :class:`FaultInjectionMiddleware` before it reaches a route. Fault injection
(error rates, latency, dropped connections, ERP lock errors) belongs here and nowhere else, so that
the routes stay the faithful ECC; until it is configured the middleware passes everything through.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class FaultInjectionMiddleware:
    """Pure ASGI middleware wrapping the whole emulator (currently a pass-through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
