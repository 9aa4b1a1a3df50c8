"""Seed data: the rows an emulated environment holds after start and after ``/emulator/reset``.

Format: a JSON object whose keys are entity set names and whose values are lists of rows in the
Web API's JSON form, exactly as a client would POST them: lookups as ``"x@odata.bind":
"/accounts(<id>)"`` or by alternate key (``"/accounts(accountnumber='ACC-1001')"``), related
rows nested under navigation properties as deep inserts. Rows are created in document order
(so a bind can only name a row that comes earlier) through the same checks as a POST; a seed
with an unknown column, a too long value or a dangling bind fails at start-up with
:class:`SeedError` naming the entity set, the row's position and Dataverse's message. Seeding
announces no changes (webhooks and change tracking start from the seeded state).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.payload import Mode, PayloadReader
from d365sap.emulators.dataverse.schema import Schema
from d365sap.emulators.dataverse.store import SYSTEM, Store
from d365sap.emulators.dataverse.writes import Writer

PACKAGED_SEED = "dataverse/seed.json"


class SeedError(ValueError):
    """The seed cannot be used; the message names the file, the row and the problem."""


def load_seed_document(path: Path | None) -> Any:
    """The seed JSON from ``path``, or the packaged demo seed when ``path`` is None."""
    source = str(path) if path is not None else PACKAGED_SEED
    try:
        if path is None:
            text = resources.files("d365sap.resources").joinpath(PACKAGED_SEED).read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"seed file {source}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedError(f"seed file {source}: malformed JSON: {exc}") from exc


def apply_seed(
    schema: Schema, store: Store, writer: Writer, document: Any, source: str = PACKAGED_SEED
) -> int:
    """Create every row of ``document`` atomically; returns how many top-level rows."""
    if not isinstance(document, dict):
        raise SeedError(f"{source}: a JSON object of entity set names is expected")
    reader = PayloadReader(schema, store, "")
    created = 0
    with store.quiet(), store.transaction():
        for entity_set, rows in document.items():
            table = schema.by_set.get(entity_set)
            if table is None:
                known = ", ".join(sorted(schema.by_set))
                raise SeedError(f"{source}: unknown entity set '{entity_set}' (known: {known})")
            if not isinstance(rows, list):
                raise SeedError(f"{source}: '{entity_set}' must hold a list of rows")
            for index, row in enumerate(rows):
                where = f"{source}: {entity_set}[{index}]"
                if not isinstance(row, dict):
                    raise SeedError(f"{where}: a row must be a JSON object")
                try:
                    writer.create(reader.read(table, row, Mode.CREATE), SYSTEM)
                except errors.WebApiError as exc:
                    raise SeedError(f"{where}: {exc.message}") from exc
                created += 1
    return created
