"""Existence checks that arrive together share one OData query.

Before it creates or updates a record, a flow asks S/4HANA Cloud whether the record exists (the
package's GET on ``A_CustomerSalesArea``). Under load dozens of messages ask at the same moment,
each for its own key. :class:`KeyLookup` gathers the keys asked for while earlier queries are on
the way and sends them as one ``$filter`` of ``or``-ed key conditions, then answers each caller
with the entity of its key, or ``None``. S/4 sees a fraction of the requests (its APIs are
metered), and the service spends its CPU once per query instead of once per message.

A failed query fails every caller that shared it, with the same error: each message is then
retried or parked exactly as if it had sent the query alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.batching import Batcher

Key = tuple[str, ...]


@dataclass(frozen=True)
class Found:
    """The answer for one key: the query's HTTP status and the entity, if it exists."""

    status: int
    entity: dict[str, Any] | None
    shared_with: int
    """How many other keys the same query asked for."""


class KeyLookup:
    """Looks up entities of one entity set by their whole key, many keys per query."""

    def __init__(
        self,
        client: S4ODataClient,
        entity_set: str,
        key_properties: Sequence[str],
        *,
        max_keys: int = 20,
        max_in_flight: int = 4,
    ) -> None:
        self.client = client
        self.entity_set = entity_set
        self.key_properties = tuple(key_properties)
        self.queries = 0
        # Keys asked for while queries are on the way form the next query (engine.batching).
        self._batches: Batcher[Key, Found] = Batcher(
            self._query, max_size=max_keys, concurrency=max_in_flight
        )

    def _key_of(self, values: Mapping[str, Any]) -> Key:
        return tuple(str(values.get(name, "")) for name in self.key_properties)

    @staticmethod
    def _matchable(key: Key) -> Key:
        """A key as S/4 may echo it: numbers with or without leading zeros, any case."""
        return tuple(part.strip().lstrip("0").upper() for part in key)

    async def find(self, keys: Mapping[str, str]) -> Found:
        """The entity with these key values (``None`` if there is none); raises as the query."""
        if set(keys) != set(self.key_properties):
            raise ValueError(f"a lookup needs exactly the key {list(self.key_properties)}")
        return await self._batches.submit(self._key_of(keys))

    async def _query(self, batch: list[Key]) -> list[Found]:
        """One query for the keys of ``batch``; an answer per key, in order."""
        keys = list(dict.fromkeys(batch))
        reply = await self.client.query(
            self.entity_set,
            any_of=[dict(zip(self.key_properties, key, strict=True)) for key in keys],
            select=list(self.key_properties),
        )
        self.queries += 1
        if len(keys) == 1:  # the query named one key: whatever it found is that key's
            only = reply.entities[0] if reply.entities else None
            entities = {self._matchable(keys[0]): only} if only is not None else {}
        else:
            entities = {self._matchable(self._key_of(e)): e for e in reply.entities}
        return [
            Found(reply.status, entities.get(self._matchable(key)), len(keys) - 1) for key in batch
        ]
