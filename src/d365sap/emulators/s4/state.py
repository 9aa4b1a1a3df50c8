"""Everything one emulator instance holds, wired together once per :func:`create_app`.

Two apps in one process (e.g. two test servers) never share data, tokens or journals.
"""

from __future__ import annotations

from d365sap.emulators.faults import S4_KINDS, FaultController
from d365sap.emulators.s4.csrf import CsrfRegistry
from d365sap.emulators.s4.edm import load_model
from d365sap.emulators.s4.journal import Journal
from d365sap.emulators.s4.rules import Rules
from d365sap.emulators.s4.seed import apply_seed, load_seed_document
from d365sap.emulators.s4.service import ODataService
from d365sap.emulators.s4.store import Store
from d365sap.emulators.s4.writes import Writer
from d365sap.emulators.settings import S4EmulatorSettings

SERVICE_ROOT = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"


def in_service(path: str) -> bool:
    """The OData service (root and below): what faults hit unless their ``paths`` say otherwise."""
    return path == SERVICE_ROOT.rstrip("/") or path.startswith(SERVICE_ROOT)


class EmulatorState:
    """Model, data, CSRF sessions, journal and injected faults of one emulated S/4 system."""

    def __init__(self, settings: S4EmulatorSettings) -> None:
        self.settings = settings
        self.model = load_model()
        self.store = Store(self.model)
        self.rules = Rules(self.store, settings.bp_number_range_from, settings.bp_number_range_to)
        self.writer = Writer(self.model, self.store, self.rules)
        self.journal = Journal(settings.journal_size)
        self.csrf = CsrfRegistry(settings.csrf_token_ttl_seconds)
        self.faults = FaultController(settings.faults, S4_KINDS, in_service)
        self.seed_source = str(settings.seed_file) if settings.seed_file else "packaged seed.json"
        self.seed_document = load_seed_document(settings.seed_file)
        self.service = ODataService(
            self.model, self.store, self.writer, self.journal, settings.page_size
        )
        self.reset()

    @property
    def session_cookie(self) -> str:
        """``SAP_SESSIONID_<SID>_<client>``."""
        return f"SAP_SESSIONID_{self.settings.sap_system_id}_{self.settings.sap_client}"

    @property
    def realm(self) -> str:
        """The basic-auth realm SAP NetWeaver announces."""
        sid, client = self.settings.sap_system_id, self.settings.sap_client
        return f'Basic realm="SAP NetWeaver Application Server [{sid}/{client}]"'

    def reset(self) -> None:
        """Back to the seed: data replaced, journal emptied (CSRF sessions and faults stay)."""
        with self.store.lock:
            self.store.clear()
            apply_seed(self.model, self.writer, self.seed_document, self.seed_source)
        self.journal.clear()
