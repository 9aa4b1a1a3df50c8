"""What the native customer flow remembers between messages, in the message store's database.

:class:`AppliedDigests` — per Dataverse row (ERP account detail or ERP account), a digest of
the data last applied to SAP. Every change of an account brings a message, and so does the
flow's own write-back (the customer number, the status): without a memory the write-back would
be sent to SAP again and again. A record whose digest is unchanged is not sent again; its
write-back is only repaired if the row lacks it. With the digest go the message that applied it
and what it did (``created``, ``updated``, …): a retry of that same message (say, after its
write-back failed) reports what its earlier attempt did instead of "unchanged". They live in the
``source_versions`` table under the source ``dataverse_customer:applied`` (row id → digest and
action as the version, the message id as the pass id), next to the change loader's own versions
but under a name no checkpoint uses.

:class:`NumberCounter` — a durable counter for customer numbers d365sap chooses itself (an
external number range in SAP ERP): one atomic increment per number, so no two customers are
ever given the same one, across processes and restarts. It uses the ``counters`` table, one row
per range.

Both are synchronous like the store; async callers use ``MessageStore.call``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update

from d365sap.config_create import CustomerNumberRange
from d365sap.engine.checkpoints import upsert_versions
from d365sap.engine.db import insert_for
from d365sap.engine.store import MessageStore
from d365sap.engine.tables import CounterRow, SourceVersionRow

VERSIONS = cast(Table, SourceVersionRow.__table__)
COUNTERS = cast(Table, CounterRow.__table__)
APPLIED_SOURCE = "dataverse_customer:applied"
DELETED = "deleted"
"""The action recorded for a sales area whose deletion was carried out."""
_DIGEST_LENGTH = 48  # hex digits kept (192 bits), leaving room for the action in 64 characters


def digest(*parts: Any) -> str:
    """SHA-256 (hex, shortened) of ``parts`` as canonical JSON: the same data, the same digest."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST_LENGTH]


def _insert(store: MessageStore) -> Any:
    return insert_for(store.engine.dialect.name)


_APPLIED_OF_ROW = select(VERSIONS.c.version, VERSIONS.c.pass_id).where(
    VERSIONS.c.source == bindparam("source"), VERSIONS.c.row_id == bindparam("row_id")
)


@dataclass(frozen=True)
class Applied:
    """What was last applied to SAP for one row: its digest, the action and the message."""

    row_id: str
    digest: str
    action: str
    message_id: str | None = None

    def version(self) -> str:
        """As stored: ``<digest>:<action>``."""
        return f"{self.digest}:{self.action}"

    @classmethod
    def parse(cls, row_id: str, version: str, message_id: str | None) -> Applied:
        """From the stored form (a bare digest reads as action ``updated``)."""
        value, _, action = version.partition(":")
        return cls(row_id, value, action or "updated", message_id)


class AppliedDigests:
    """Digest of the data last applied to SAP, per Dataverse row id."""

    def __init__(self, store: MessageStore, source: str = APPLIED_SOURCE) -> None:
        self.store = store
        self.source = source

    def get(self, row_id: str) -> Applied | None:
        """What was recorded for ``row_id``, if anything."""
        key = row_id.lower()
        with self.store.read() as conn:
            row = conn.execute(_APPLIED_OF_ROW, {"source": self.source, "row_id": key}).first()
        return None if row is None else Applied.parse(key, str(row.version), row.pass_id)

    def put(self, entries: Sequence[Applied]) -> None:
        """Record ``entries`` in one transaction (replacing what was recorded before)."""
        if not entries:
            return
        now = datetime.now(UTC)
        latest = {entry.row_id.lower(): entry for entry in entries}
        rows = [
            {
                "source": self.source,
                "row_id": row_id,
                "version": entry.version(),
                "pass_id": entry.message_id,
                "seen_at": now,
            }
            for row_id, entry in latest.items()
        ]
        with self.store.fast() as conn:
            conn.execute(upsert_versions(self.store.engine.dialect.name), rows)

    def forget(self, row_id: str) -> None:
        """Drop what was recorded for ``row_id``: its next message is sent whatever it holds."""
        with self.store.write() as session:
            session.execute(
                delete(VERSIONS).where(
                    VERSIONS.c.source == self.source, VERSIONS.c.row_id == row_id.lower()
                )
            )


class NumberCounter:
    """Hands out the numbers of one external customer number range, each exactly once."""

    def __init__(self, store: MessageStore, numbers: CustomerNumberRange) -> None:
        self.store = store
        self.numbers = numbers
        # One counter per range: configuring another range starts at that range's first number.
        self.name = f"kunnr:{int(numbers.from_)}-{int(numbers.to)}"[:32]

    def next_number(self) -> str:
        """The next unused number of the range; ``ValueError`` once the range is exhausted."""
        with self.store.write() as session:
            session.execute(
                _insert(self.store)(COUNTERS)
                .values(name=self.name, value=0)
                .on_conflict_do_nothing(index_elements=[COUNTERS.c.name])
            )
            drawn = session.execute(
                update(COUNTERS)
                .where(COUNTERS.c.name == self.name)
                .values(value=COUNTERS.c.value + 1)
                .returning(COUNTERS.c.value)
            ).scalar_one()
        return self.numbers.number(int(drawn) - 1)
