"""Flow test fixtures: the engine's ``store`` (SQLite and, when reachable, PostgreSQL)."""

from __future__ import annotations

from engine.conftest import store

__all__ = ["store"]
