"""A Dataverse table's change tracking as the change feed the engine's loader reads.

``engine/change_loader.py`` knows nothing of Dataverse: it reads pages with ``upserts``,
``removals``, ``next_link`` and ``delta_link`` from ``feed.read(link)`` and asks ``identity``
for a row's id and version. :class:`DataverseFeed` gives it
:meth:`~d365sap.connectors.dataverse.DataverseClient.changes` of one entity set, and
:func:`row_identity` the row's primary key and the version number inside its ETag
(``W/"915244"``), which Dataverse raises with every change of the row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from d365sap.connectors.dataverse import DataverseClient, DeltaPage
from d365sap.connectors.dataverse_keys import check_name, etag_version
from d365sap.errors import PermanentError


class DataverseFeed:
    """Change tracking of ``entity_set`` (``select`` columns) through ``client``."""

    def __init__(
        self,
        client: DataverseClient,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> None:
        self.client = client
        self.entity_set = check_name(entity_set, "entity_set")
        self.select = list(select) if select is not None else None
        self.page_size = page_size

    def read(self, link: str | None) -> AsyncIterator[DeltaPage]:
        """Every row (``link`` None), or the changes since a delta link, page by page."""
        return self.client.changes(
            self.entity_set, select=self.select, link=link, page_size=self.page_size
        )


def row_identity(primary_key: str) -> Callable[[Mapping[str, Any]], tuple[str, str]]:
    """``row -> (id, version)`` for rows whose primary key column is ``primary_key``.

    The version is the ETag's (``versionnumber``), or ``versionnumber`` itself when selected.
    """
    check_name(primary_key, "primary_key")

    def identity(row: Mapping[str, Any]) -> tuple[str, str]:
        row_id = row.get(primary_key)
        version = etag_version(row.get("@odata.etag")) or row.get("versionnumber")
        if not row_id or version is None:
            raise PermanentError(
                f"Dataverse row without {primary_key} or version (@odata.etag): {dict(row)!r}"[:300]
            )
        return str(row_id).lower(), str(version)

    return identity
