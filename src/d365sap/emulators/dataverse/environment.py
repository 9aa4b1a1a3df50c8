"""Everything one emulated Dataverse environment holds, wired together once per app.

Two apps in one process (two test servers) never share rows, tokens, versions or faults.
"""

from __future__ import annotations

from d365sap.emulators.dataverse.batch import handle_batch
from d365sap.emulators.dataverse.change_reads import TrackedReads
from d365sap.emulators.dataverse.changes import ChangeTracker
from d365sap.emulators.dataverse.identity import TokenIssuer
from d365sap.emulators.dataverse.messages import WebApiRequest, WebApiResponse
from d365sap.emulators.dataverse.protection import ServiceProtection
from d365sap.emulators.dataverse.query import PagingSigner
from d365sap.emulators.dataverse.query_views import Relations, SchemaViews
from d365sap.emulators.dataverse.reads import Reads, find_row
from d365sap.emulators.dataverse.remote_context import TableSchema
from d365sap.emulators.dataverse.seed import PACKAGED_SEED, apply_seed, load_seed_document
from d365sap.emulators.dataverse.service import DataverseService
from d365sap.emulators.dataverse.store import SYSTEM, Origin, Store
from d365sap.emulators.dataverse.tables import build_schema
from d365sap.emulators.dataverse.uri import resolve, split_path
from d365sap.emulators.dataverse.webhook_delivery import create_webhooks
from d365sap.emulators.dataverse.writes import Writer
from d365sap.emulators.faults import FaultController
from d365sap.emulators.settings import DATAVERSE_KINDS, DataverseEmulatorSettings

API_ROOT = "/api/data/v9.2"
DEFAULT_RESOURCE_URL = "https://127.0.0.1:18083"
CONCURRENT_USER = Origin(SYSTEM.caller, "etag-change")
"""Who "changed" a row when an ETag change is injected."""


def in_web_api(path: str) -> bool:
    """The Web API (root and below): what faults hit unless their ``paths`` say otherwise."""
    return path == API_ROOT or path.startswith(API_ROOT + "/")


class DataverseEnvironment:
    """Schema, rows, the Web API service, the tenant's token issuer and injected faults."""

    def __init__(self, settings: DataverseEmulatorSettings) -> None:
        self.settings = settings
        self.schema = build_schema()
        self.store = Store(self.schema)
        self.writer = Writer(
            self.schema,
            self.store,
            enforce_business_required=settings.enforce_business_required,
            base_currency=settings.base_currency,
        )
        self.views = SchemaViews(self.schema)
        self.relations = Relations(self.schema, self.store)
        self.signer = PagingSigner()
        self.reads = Reads(self.schema, self.store, self.views, self.relations, self.signer)
        self.service = DataverseService(
            self.schema, self.store, self.writer, self.reads, self.views, self.relations
        )
        self.service.batch = self._batch
        self.changes = ChangeTracker(settings.change_tracking)
        self.store.subscribe(self.changes)
        self.service.tracked_read = TrackedReads(self.store, self.views, self.reads, self.changes)
        tables = TableSchema(self.schema)
        self.webhooks, self.deliveries = create_webhooks(
            settings.webhooks, tables, tables.attributes()
        )
        self.store.subscribe(self.deliveries)
        self.protection = ServiceProtection(settings.protection)
        self.issuer = TokenIssuer(settings.entra, settings.resource_url or DEFAULT_RESOURCE_URL)
        self.faults = FaultController(settings.faults, DATAVERSE_KINDS, in_web_api)
        self.seed_source = str(settings.seed_file) if settings.seed_file else PACKAGED_SEED
        self.seed_document = load_seed_document(settings.seed_file)
        self.reset()

    def _batch(self, request: WebApiRequest) -> WebApiResponse:
        """``POST $batch``: each part through the service, change sets in a store transaction."""
        return handle_batch(request, self.service.handle, self.store.transaction)

    def reset(self) -> int:
        """Back to the seed: every row replaced (faults, tokens and versions go on)."""
        with self.store.lock:
            self.store.clear()
            rows = apply_seed(
                self.schema, self.store, self.writer, self.seed_document, self.seed_source
            )
            self.changes.reset()  # delta tokens from before describe other rows: expired
            return rows

    def change_row(self, path: str) -> bool:
        """Give the row at ``path`` (below the API root) a new version, as another user would.

        The injected ETag change: the client's ``If-Match`` then no longer matches. False when
        the path does not name one existing row.
        """
        try:
            segments = split_path(path)
            if not segments:
                return False
            with self.store.lock:
                target = resolve(self.schema, segments)
                if target.key is None or target.navigation is not None:
                    return False
                row = find_row(self.store, target.key)
                if row is None:
                    return False
                table = target.table
                self.store.update(
                    table.logical_name, str(row[table.primary_id]), {}, CONCURRENT_USER
                )
                return True
        except Exception:  # a path the Web API itself will refuse: nothing to change
            return False
