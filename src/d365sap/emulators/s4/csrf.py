"""SAP's CSRF protection: tokens bound to a session cookie, fetched with ``X-CSRF-Token: Fetch``.

A modifying request passes only with the token *and* the session cookie it was issued for, from
the same user, before the token expired. Tokens look like SAP's (24 characters of base64, ending
in ``==``). ``expire_all`` backs ``POST /emulator/csrf/expire`` so clients' "refetch on 403
Required and retry once" logic can be exercised on demand.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FAILED_BODY = b"CSRF token validation failed"
_MAX_SESSIONS = 10_000


@dataclass
class _Session:
    user: str
    token: str | None = None
    expires: float = 0.0
    last_used: float = 0.0


class CsrfRegistry:
    """Sessions (cookie value → user, token, expiry), thread-safe."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def fetch(self, session_id: str | None, user: str) -> tuple[str, str, bool]:
        """Token for the caller's session (a new session when it has none).

        Returns ``(session id, token, new session)``; a still valid token is handed out again,
        as SAP does within one session.
        """
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id or "")
            created = False
            if session is None or session.user != user:
                self._prune(now)
                session_id = secrets.token_urlsafe(24)
                session = self._sessions[session_id] = _Session(user)
                created = True
            assert session_id is not None
            if session.token is None or session.expires <= now:
                session.token = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
                session.expires = now + self.ttl
            session.last_used = now
            return session_id, session.token, created

    def validate(self, session_id: str | None, token: str | None, user: str) -> bool:
        """True when ``token`` is the live token of ``session_id`` for ``user``."""
        if not session_id or not token:
            return False
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.user != user or session.token is None:
                return False
            if session.expires <= now:
                return False
            session.last_used = now
            return secrets.compare_digest(session.token, token)

    def expire(self, session_id: str | None) -> bool:
        """Invalidate the token of one session (an injected expiry); True if it was live."""
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id or "")
            if session is None or session.token is None:
                return False
            live = session.expires > now
            session.token = None
            return live

    def expire_all(self) -> int:
        """Invalidate every token (sessions stay); returns how many tokens were live."""
        now = self._clock()
        with self._lock:
            live = sum(1 for s in self._sessions.values() if s.token and s.expires > now)
            for session in self._sessions.values():
                session.token = None
            return live

    def _prune(self, now: float) -> None:
        if len(self._sessions) < _MAX_SESSIONS:
            return
        stale = [k for k, s in self._sessions.items() if s.expires <= now]
        for key in stale or sorted(self._sessions, key=lambda k: self._sessions[k].last_used):
            self._sessions.pop(key, None)
            if len(self._sessions) < _MAX_SESSIONS // 2:
                break
