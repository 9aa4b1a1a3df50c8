"""Seed data: the entities the emulated system holds after start and after ``/emulator/reset``.

Format: a JSON object whose keys are entity set names (of any hosted service: business partners,
products, sales orders) and whose values are lists of entities in OData JSON form. Entities may
nest children under navigation properties like a deep insert (to-many as a list or
``{"results": [...]}``, to-one as an object); children inherit their parent's keys, a customer
role gets its partner's number. Read-only properties (creation date,
names) may be given. Everything is checked against the EDMX exactly like a POST, so a seed with
an unknown property, a too long value, a missing key or a duplicate fails at start-up, naming
the place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from d365sap.emulators.s4.edm import Model
from d365sap.emulators.s4.errors import ODataError
from d365sap.emulators.s4.payload import Mode, parse_entity
from d365sap.emulators.s4.writes import Writer

SEED_USER = "SAP_SYSTEM"
PACKAGED_SEED = "seed.json"


class SeedError(ValueError):
    """The seed file cannot be used; the message names the file and the entity."""


def load_seed_document(path: Path | None) -> Any:
    """The seed JSON from ``path``, or the packaged demo seed when ``path`` is None."""
    try:
        if path is None:
            text = (
                resources.files("d365sap.emulators.s4").joinpath(PACKAGED_SEED).read_text("utf-8")
            )
        else:
            text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"seed file {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedError(f"seed file {path or PACKAGED_SEED}: malformed JSON: {exc}") from exc


class SeedTarget(Protocol):
    """A hosted service the seed can fill: its model and the writer into its store."""

    @property
    def model(self) -> Model: ...

    @property
    def writer(self) -> Writer: ...


def apply_seed(targets: Sequence[SeedTarget], document: Any, source: str = PACKAGED_SEED) -> None:
    """Insert every entity of ``document`` into the service that defines its entity set.

    Raises :class:`SeedError` on the first problem.
    """
    if not isinstance(document, dict):
        raise SeedError(f"{source}: a JSON object of entity set names is expected")
    for set_name, entries in document.items():
        owner = next((t for t in targets if t.model.entity_set(set_name) is not None), None)
        if owner is None:
            raise SeedError(f"{source}: unknown entity set '{set_name}'")
        model, writer = owner.model, owner.writer
        entity_set = model.entity_sets[set_name]
        if not isinstance(entries, list):
            raise SeedError(f"{source}: '{set_name}' must hold a list of entities")
        for index, entry in enumerate(entries):
            where = f"{set_name}[{index}]"
            try:
                parsed = parse_entity(model, entity_set, entry, Mode.SEED)
                writer.seed(entity_set, parsed, SEED_USER)
            except ODataError as exc:
                target = exc.details[0].target if exc.details else ""
                place = f"{where}/{target}" if target else where
                raise SeedError(f"{source}: {place}: {exc.message}") from exc
