"""Everything one emulator instance holds, wired together once per :func:`create_app`.

Two apps in one process (e.g. two test servers) never share data, tokens or journals.
"""

from __future__ import annotations

from d365sap.emulators.faults import S4_KINDS, FaultController
from d365sap.emulators.s4.csrf import CsrfRegistry
from d365sap.emulators.s4.hosting import ODataHost
from d365sap.emulators.s4.journal import Journal
from d365sap.emulators.s4.sales_orders.endpoint import SOAP_PATH
from d365sap.emulators.s4.sales_orders.system import SalesOrderSystem
from d365sap.emulators.s4.seed import apply_seed, load_seed_document
from d365sap.emulators.s4.services import (
    BUSINESS_PARTNER,
    PRODUCT,
    SALES_ORDER,
    SERVICES,
    ServiceSpec,
    service_for,
)
from d365sap.emulators.settings import S4EmulatorSettings

SERVICE_ROOT = BUSINESS_PARTNER.root
SOAP_PATHS: tuple[str, ...] = (SOAP_PATH,)
"""Business endpoints outside the OData services (SOAP inbound services)."""


def in_service(path: str) -> bool:
    """An OData service or a SOAP endpoint: what faults hit unless their ``paths`` say otherwise."""
    return service_for(path) is not None or path in SOAP_PATHS


class EmulatorState:
    """Services, data, CSRF sessions, journal and injected faults of one emulated S/4 system.

    ``model``, ``store``, ``rules``, ``writer`` and ``service`` are those of
    API_BUSINESS_PARTNER; ``hosts`` has every hosted OData service; ``sales_orders`` the SOAP
    service SalesOrderBulkRequest_In with its processing.
    """

    def __init__(self, settings: S4EmulatorSettings) -> None:
        self.settings = settings
        self.journal = Journal(settings.journal_size)
        self.hosts: dict[ServiceSpec, ODataHost] = {
            spec: ODataHost(spec, settings, self.journal) for spec in SERVICES
        }
        partner = self.hosts[BUSINESS_PARTNER]
        self.model = partner.model
        self.store = partner.store
        self.rules = partner.rules
        self.writer = partner.writer
        self.service = partner.service
        self.csrf = CsrfRegistry(settings.csrf_token_ttl_seconds)
        self.faults = FaultController(settings.faults, S4_KINDS, in_service)
        self.seed_source = str(settings.seed_file) if settings.seed_file else "packaged seed.json"
        self.seed_document = load_seed_document(settings.seed_file)
        self.sales_orders = SalesOrderSystem(
            settings, partner, self.hosts[PRODUCT], self.hosts[SALES_ORDER]
        )
        self.reset()

    def host(self, spec: ServiceSpec) -> ODataHost:
        """The hosted service of ``spec``."""
        return self.hosts[spec]

    @property
    def session_cookie(self) -> str:
        """``SAP_SESSIONID_<SID>_<client>``."""
        return f"SAP_SESSIONID_{self.settings.sap_system_id}_{self.settings.sap_client}"

    @property
    def realm(self) -> str:
        """The basic-auth realm SAP NetWeaver announces."""
        sid, client = self.settings.sap_system_id, self.settings.sap_client
        return f'Basic realm="SAP NetWeaver Application Server [{sid}/{client}]"'

    def entity_counts(self) -> dict[str, int]:
        """Number of records per non-empty entity set, over every hosted service."""
        counts: dict[str, int] = {}
        for host in self.hosts.values():
            counts.update(host.store.counts())
        return counts

    def reset(self) -> None:
        """Back to the seed: data replaced, journal and sales order messages emptied.

        CSRF sessions and faults stay.
        """
        self.sales_orders.reset()
        hosts = list(self.hosts.values())
        for host in hosts:
            host.store.lock.acquire()
        try:
            for host in hosts:
                host.store.clear()
            apply_seed(hosts, self.seed_document, self.seed_source)
        finally:
            for host in reversed(hosts):
                host.store.lock.release()
        self.journal.clear()
