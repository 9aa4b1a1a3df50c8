"""One hosted OData service: its model, store, rules, writer and service core, wired together.

Every service of the emulator (see ``services``) gets its own model and store, so entity sets of
different services never mix, while the request gate, CSRF sessions, journal and faults stay
shared, as they are in one S/4 system.
"""

from __future__ import annotations

from d365sap.emulators.s4.edm import Model, load_model
from d365sap.emulators.s4.journal import Journal
from d365sap.emulators.s4.rules import Rules
from d365sap.emulators.s4.service import ODataService
from d365sap.emulators.s4.services import ServiceSpec
from d365sap.emulators.s4.store import Store
from d365sap.emulators.s4.writes import Writer
from d365sap.emulators.settings import S4EmulatorSettings


class ODataHost:
    """Everything one OData service of the emulated system holds."""

    def __init__(self, spec: ServiceSpec, settings: S4EmulatorSettings, journal: Journal) -> None:
        self.spec = spec
        self.model: Model = load_model(spec.edmx_resource)
        self.store = Store(self.model)
        self.rules = Rules(self.store, settings.bp_number_range_from, settings.bp_number_range_to)
        self.writer = Writer(self.model, self.store, self.rules)
        self.service = ODataService(
            self.model,
            self.store,
            self.writer,
            journal,
            settings.page_size,
            application=spec.application,
            read_only=spec.read_only,
        )

    @property
    def root(self) -> str:
        """The service root path, ``/sap/opu/odata/sap/<NAME>/``."""
        return self.spec.root
