"""Row changes as the emulator's store announces them.

Change tracking (delta links) and webhooks both follow the store through this one event, so
neither needs to know how rows are kept, and the store needs to know neither of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from d365sap.emulators.dataverse.messages import Caller

ChangeKind = Literal["Create", "Update", "Delete"]


@dataclass(frozen=True)
class RowChange:
    """One committed create, update or delete of a row.

    ``table`` is the table's logical name (``account``), ``entity_set`` its Web API collection
    (``accounts``). ``before``/``after`` are the full rows as stored (logical column names,
    lookups as ``_<name>_value``); ``before`` is ``None`` on Create, ``after`` on Delete.
    ``version`` is the row's ``versionnumber`` after the change (for a delete: the version the
    deletion was recorded at); it grows across the whole store, so it orders all changes.
    """

    table: str
    entity_set: str
    row_id: str
    kind: ChangeKind
    before: Mapping[str, object] | None
    after: Mapping[str, object] | None
    version: int
    caller: Caller
    request_id: str
    changed_columns: frozenset[str] = frozenset()
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class ChangeListener(Protocol):
    """Called by the store after a change is committed (never for a rolled-back change set)."""

    def __call__(self, change: RowChange) -> None: ...
