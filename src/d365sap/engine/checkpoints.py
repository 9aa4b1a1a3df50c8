"""Named checkpoints of reads from remote systems, and the source versions last handed on.

A loader that reads a remote table page by page (``dataverse:sap_erpaccountdetails``) saves
after every page where it stands: the link of the next page inside the current pass, the delta
link the next pass starts from, and counters. The same transaction records, per row, the
version that was handed on (``source_versions``), so a full re-read (after an expired delta
token, or when a saved page link is no longer honoured) can tell changed rows from unchanged
ones.

Each save names the revision it started from; if another loader of the same name saved in
between, :class:`CheckpointConflictError` is raised instead of both advancing. Methods are
synchronous; async callers use ``MessageStore.call``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, Table, delete, func, select, update

from d365sap.engine.db import insert_for
from d365sap.engine.store import MessageStore
from d365sap.engine.tables import CheckpointRow, SourceVersionRow
from d365sap.errors import D365SapError, ValidationError

CHECKPOINTS = cast(Table, CheckpointRow.__table__)
VERSIONS = cast(Table, SourceVersionRow.__table__)
Phase = Literal["initial", "delta", "rebaseline"]
PHASES: frozenset[str] = frozenset({"initial", "delta", "rebaseline"})
_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


class CheckpointConflictError(D365SapError):
    """Another loader saved the checkpoint since this one read it: only one may advance it."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Checkpoint:
    """Where a named read stands.

    ``phase`` is the kind of the current pass: ``initial`` (first full read), ``delta``
    (following delta links) or ``rebaseline`` (a full read after an expired delta token).
    ``next_link`` is set while a pass is unfinished; ``delta_link`` is where the next delta pass
    starts. ``pages``, ``rows`` and ``emitted`` count the current pass, ``emitted_total`` every
    pass; ``alarm`` says why the loader stopped (a re-baseline over its cap).
    """

    name: str
    phase: str
    next_link: str | None
    delta_link: str | None
    pass_id: str | None
    pages: int
    rows: int
    emitted: int
    emitted_total: int
    passes: int
    alarm: str | None
    revision: int
    created_at: datetime
    updated_at: datetime


def _view(row: Any) -> Checkpoint:
    values = row._mapping if hasattr(row, "_mapping") else row
    return Checkpoint(**{name: values[name] for name in Checkpoint.__dataclass_fields__})


@dataclass(frozen=True)
class Advance:
    """What one save changes: the position, the counters and the rows handed on or removed.

    ``seen`` are ``(row id, version)`` of rows read on the page (all of them in a full pass, so
    the pass can tell later which known rows it never met), ``removed`` the ids to forget.
    """

    phase: str
    next_link: str | None
    delta_link: str | None
    pass_id: str | None
    pages: int
    rows: int
    emitted: int
    emitted_total: int
    passes: int
    alarm: str | None = None
    seen: Sequence[tuple[str, str]] = ()
    removed: Sequence[str] = ()


@functools.cache
def upsert_versions(dialect: str) -> Any:
    """Records row versions, replacing what the rows had (built once per dialect)."""
    statement = insert_for(dialect)(VERSIONS)
    return statement.on_conflict_do_update(
        index_elements=[VERSIONS.c.source, VERSIONS.c.row_id],
        set_={
            "version": statement.excluded.version,
            "pass_id": statement.excluded.pass_id,
            "seen_at": statement.excluded.seen_at,
        },
    )


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class CheckpointStore:
    """Checkpoints and source versions in the message store's database."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store
        self._dialect = store.engine.dialect.name

    def get(self, name: str) -> Checkpoint | None:
        """The checkpoint called ``name``, if it was ever saved."""
        with self.store.sessions() as session:
            row = session.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.name == name)).first()
            return _view(row) if row is not None else None

    def all(self) -> list[Checkpoint]:
        """Every checkpoint, by name."""
        with self.store.sessions() as session:
            rows = session.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.name)).all()
            return [_view(row) for row in rows]

    def open(self, name: str) -> Checkpoint:
        """The checkpoint called ``name``, created empty (an initial pass to run) if missing."""
        if not name or len(name) > 200:
            raise ValidationError("checkpoint", "a name of 1 to 200 characters is needed")
        existing = self.get(name)
        if existing is not None:
            return existing
        now = _now()
        values = {
            "name": name,
            "phase": "initial",
            "next_link": None,
            "delta_link": None,
            "pass_id": None,
            "pages": 0,
            "rows": 0,
            "emitted": 0,
            "emitted_total": 0,
            "passes": 0,
            "alarm": None,
            "revision": 0,
            "created_at": now,
            "updated_at": now,
        }
        make = insert_for(self._dialect)
        with self.store.write() as session:
            session.execute(make(CHECKPOINTS).values(values).on_conflict_do_nothing())
        opened = self.get(name)
        assert opened is not None
        return opened

    def save(self, current: Checkpoint, advance: Advance) -> Checkpoint:
        """Move ``current`` forward in one transaction, with the versions seen and removed.

        Raises :class:`CheckpointConflictError` when the checkpoint is no longer at
        ``current.revision``; nothing is written then.
        """
        if advance.phase not in PHASES:
            raise ValidationError("phase", f"{advance.phase!r} is not one of {sorted(PHASES)}")
        now = _now()
        changes = {
            "phase": advance.phase,
            "next_link": advance.next_link,
            "delta_link": advance.delta_link,
            "pass_id": advance.pass_id,
            "pages": advance.pages,
            "rows": advance.rows,
            "emitted": advance.emitted,
            "emitted_total": advance.emitted_total,
            "passes": advance.passes,
            "alarm": advance.alarm,
            "revision": current.revision + 1,
            "updated_at": now,
        }
        with self.store.write() as session:
            moved: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(CHECKPOINTS)
                .where(CHECKPOINTS.c.name == current.name)
                .where(CHECKPOINTS.c.revision == current.revision)
                .values(changes)
            )
            if moved.rowcount != 1:
                raise CheckpointConflictError(
                    f"checkpoint {current.name!r} was saved by another loader "
                    f"(expected revision {current.revision})"
                )
            if advance.seen:
                session.execute(
                    upsert_versions(self._dialect),
                    [
                        {
                            "source": current.name,
                            "row_id": row_id,
                            "version": version,
                            "pass_id": advance.pass_id,
                            "seen_at": now,
                        }
                        for row_id, version in advance.seen
                    ],
                )
            for ids in _chunks(list(advance.removed)):
                session.execute(
                    delete(VERSIONS)
                    .where(VERSIONS.c.source == current.name)
                    .where(VERSIONS.c.row_id.in_(ids))
                )
        return Checkpoint(**{**current.__dict__, **changes})

    def known_versions(self, name: str, row_ids: Sequence[str]) -> dict[str, str]:
        """The versions last handed on of those ``row_ids`` that are known."""
        found: dict[str, str] = {}
        with self.store.sessions() as session:
            for ids in _chunks(list(dict.fromkeys(row_ids))):
                rows = session.execute(
                    select(VERSIONS.c.row_id, VERSIONS.c.version)
                    .where(VERSIONS.c.source == name)
                    .where(VERSIONS.c.row_id.in_(ids))
                ).all()
                found.update({str(row.row_id): str(row.version) for row in rows})
        return found

    def unseen(self, name: str, pass_id: str) -> list[str]:
        """Known rows a full pass ``pass_id`` did not meet: deleted while it could not see it."""
        with self.store.sessions() as session:
            rows = session.execute(
                select(VERSIONS.c.row_id)
                .where(VERSIONS.c.source == name)
                .where((VERSIONS.c.pass_id != pass_id) | VERSIONS.c.pass_id.is_(None))
                .order_by(VERSIONS.c.row_id)
            ).all()
        return [str(row.row_id) for row in rows]

    def version_count(self, name: str) -> int:
        """How many rows of ``name`` have a version on record."""
        with self.store.sessions() as session:
            counted = session.execute(
                select(func.count()).select_from(VERSIONS).where(VERSIONS.c.source == name)
            ).scalar_one()
        return int(counted)

    def reset(self, name: str) -> bool:
        """Forget the checkpoint and its versions: the next run starts with an initial pass."""
        with self.store.write() as session:
            session.execute(delete(VERSIONS).where(VERSIONS.c.source == name))
            gone: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                delete(CHECKPOINTS).where(CHECKPOINTS.c.name == name)
            )
        return bool(gone.rowcount)
