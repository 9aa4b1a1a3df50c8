"""Customer with sales data: Dynamics → S/4HANA Cloud or SAP ERP (SEED-SPEC §1, §2, §8).

Routing follows the package's decision table. The S/4 path checks whether the sales area exists
(GET on the four keys), then creates it with a deep insert or updates it on its keyed URL with
``If-Match`` (D1, D8); a create that meets an existing record falls back to an update (D6). The
ERP paths send a DEBMAS IDoc with a message id derived from the d365sap message, so a retry never
posts twice. Every step is timed into the trace; the result is the uniform :class:`FlowResult`.

:meth:`CustomerFlow.dry_run` walks the same path for an operator without writing anything: it
maps, makes only read requests to S/4 and validates IDocs against the DEBMAS07 XSD locally.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from d365sap.config import IdocControlSettings
from d365sap.connectors.idoc import IdocClient, stable_message_id
from d365sap.connectors.odata_v2 import entity_path
from d365sap.connectors.s4_lookup import KeyLookup
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.dry_run import (
    CHECK_FAILED,
    INVALID,
    WOULD_FAIL,
    DryRunReport,
    PlannedRequest,
    Problem,
)
from d365sap.engine.trace import Trace
from d365sap.engine.types import Description
from d365sap.errors import (
    ConflictError,
    D365SapError,
    NotFoundError,
    PreconditionFailedError,
    TransientError,
    ValidationError,
)
from d365sap.flows.result import FlowResult, Outcome, error_info, http_status_for
from d365sap.mapping.crm_xml import (
    ErpAccountDetailsMessage,
    ErpAccountsMessage,
    parse_customer_message,
)
from d365sap.mapping.debmas import (
    idoc_for_message,
    idoc_from_erp_account_details,
    idoc_from_erp_accounts,
)
from d365sap.mapping.idoc_schema import validate_debmas
from d365sap.mapping.routing import Route, RouteDecision, decide_route
from d365sap.mapping.s4_sales_area import (
    S4MappingOptions,
    create_payload,
    sales_area_key,
    update_payload,
)
from d365sap.model.customer import SalesAreaKey

FLOW_NAME = "customer"
# The intake describes a message and a worker runs it moments later: parse it once. Parsed
# messages are immutable, so sharing them is safe. The cache holds a backlog of a few thousand
# queued messages (about 4 KB each parsed, plus the payload as the key), so a burst that queues
# faster than the back ends take it is still parsed once; older ones are parsed again.
_parse = functools.lru_cache(maxsize=4096)(parse_customer_message)
SALES_AREA_SET = "A_CustomerSalesArea"
CUSTOMER_SET = "A_Customer"
KEY_PROPERTIES = ("Customer", "SalesOrganization", "DistributionChannel", "Division")


@dataclass(frozen=True)
class CustomerFlowOptions:
    """What the flow needs from the configuration."""

    s4_mapping: S4MappingOptions
    idoc_control: IdocControlSettings
    discard_status: int = 202


def _keys_of(key: SalesAreaKey) -> dict[str, str]:
    return {
        "Customer": key.customer,
        "SalesOrganization": key.sales_organization,
        "DistributionChannel": key.distribution_channel,
        "Division": key.division,
    }


def _etag_of(entity: dict[str, Any]) -> str | None:
    metadata = entity.get("__metadata")
    if isinstance(metadata, dict):
        etag = metadata.get("etag")
        return str(etag) if etag else None
    return None


class CustomerFlow:
    """Runs one customer message against S/4HANA Cloud or SAP ERP."""

    name: str = FLOW_NAME
    content_types: tuple[str, ...] = ("application/xml", "text/xml")

    def __init__(self, *, s4: S4ODataClient, erp: IdocClient, options: CustomerFlowOptions) -> None:
        self.s4 = s4
        self.erp = erp
        self.options = options
        # Existence checks of messages running at the same time share one query.
        self.sales_areas = KeyLookup(s4, SALES_AREA_SET, KEY_PROPERTIES)

    def describe(self, payload: bytes) -> Description:
        """Route, business key and target queue of ``payload``, without side effects."""
        try:
            message = _parse(payload)
            decision = decide_route(message)
            key = self._business_key(message, decision)
        except D365SapError:
            return Description()
        return Description(
            route=decision.route.value,
            business_key=key,
            queue=_target_of(decision.route.value) or "default",
        )

    def _business_key(
        self, message: ErpAccountDetailsMessage | ErpAccountsMessage, decision: RouteDecision
    ) -> str | None:
        if decision.route == Route.DISCARD:
            return None
        if isinstance(message, ErpAccountDetailsMessage):
            return str(sales_area_key(message, self.options.s4_mapping))
        return f"{(message.erpaccount.number or '').strip()}"

    async def run(self, payload: bytes, trace: Trace, *, message_id: str) -> FlowResult:
        """Process ``payload``; never raises for business or back-end errors, returns them."""
        route: str | None = None
        keys: dict[str, str] = {}
        try:
            with trace.step("parse"):
                message = _parse(payload)
            with trace.step("route") as step:
                decision = decide_route(message)
                step.detail = f"{decision.route.value}: {decision.reason}"
            route = decision.route.value
            if decision.route == Route.DISCARD:
                return FlowResult(
                    outcome=Outcome.DISCARDED,
                    http_status=self.options.discard_status,
                    flow=FLOW_NAME,
                    route=route,
                    reason=decision.reason,
                )
            if decision.route == Route.S4HC:
                assert isinstance(message, ErpAccountDetailsMessage)
                keys = _keys_of(sales_area_key(message, self.options.s4_mapping))
            return await self.deliver(message, decision, trace, message_id=message_id)
        except D365SapError as error:
            return FlowResult(
                outcome=Outcome.ERROR,
                http_status=http_status_for(error),
                flow=FLOW_NAME,
                route=route,
                target=_target_of(route),
                keys=keys,
                backend_status=getattr(error, "status", None),
                backend_message=getattr(error, "backend_message", None),
                error=error_info(error),
            )

    async def deliver(
        self,
        message: ErpAccountDetailsMessage | ErpAccountsMessage,
        decision: RouteDecision,
        trace: Trace,
        *,
        message_id: str,
    ) -> FlowResult:
        """Send a routed package message to its target (not for discards); errors are raised.

        The native customer flow builds the same messages from Dataverse rows and hands them
        here, so both flows share one S/4 sales-area create/update and one IDoc path.
        ``message_id`` seeds the IDoc's ``SapMessageId``.
        """
        if decision.route == Route.S4HC:
            assert isinstance(message, ErpAccountDetailsMessage)
            return await self._to_s4(
                message, sales_area_key(message, self.options.s4_mapping), trace
            )
        if decision.route == Route.DISCARD:
            raise ValueError(f"a discarded message is not delivered: {decision.reason}")
        return await self._to_erp(message, decision, trace, message_id=message_id)

    async def _to_s4(
        self, message: ErpAccountDetailsMessage, key: SalesAreaKey, trace: Trace
    ) -> FlowResult:
        keys = _keys_of(key)
        with trace.step("s4.check_sales_area", detail=str(key)) as step:
            found = await self.sales_areas.find(keys)
            shared = f" (one query for {found.shared_with + 1} keys)" if found.shared_with else ""
            step.reply(found.status, f"{int(found.entity is not None)} result(s){shared}")
        if found.entity is None:
            body = create_payload(message, self.options.s4_mapping)
            trace.snapshot_json("mapped.create", body)
            try:
                with trace.step("s4.create_sales_area") as step:
                    created = await self.s4.create(SALES_AREA_SET, body)
                    step.reply(created.status, created.raw)
            except ConflictError as conflict:
                # Someone created it between our GET and POST: update instead (D6).
                trace.steps[-1].status = "conflict"
                trace.steps[-1].detail = conflict.message
                return await self._update(message, keys, None, trace)
            return self._s4_result(Outcome.CREATED, 201, keys, created.status, created.raw)
        return await self._update(message, keys, _etag_of(found.entity), trace)

    async def _update(
        self,
        message: ErpAccountDetailsMessage,
        keys: dict[str, str],
        etag: str | None,
        trace: Trace,
    ) -> FlowResult:
        body = update_payload(message, self.options.s4_mapping)
        trace.snapshot_json("mapped.update", body)
        if etag is None:
            with trace.step("s4.read_etag") as step:
                current = await self.s4.read(SALES_AREA_SET, keys)
                step.reply(current.status, current.etag)
                etag = current.etag
        try:
            with trace.step("s4.update_sales_area") as step:
                updated = await self.s4.update(SALES_AREA_SET, keys, body, etag=etag)
                step.reply(updated.status, updated.raw)
        except PreconditionFailedError:
            # Changed in S/4 since we read it: the message carries Dynamics' newest state, so
            # re-read the ETag and apply it once more.
            with trace.step("s4.reread_etag") as step:
                current = await self.s4.read(SALES_AREA_SET, keys)
                step.reply(current.status, current.etag)
            try:
                with trace.step("s4.update_sales_area") as step:
                    updated = await self.s4.update(SALES_AREA_SET, keys, body, etag=current.etag)
                    step.reply(updated.status, updated.raw)
            except PreconditionFailedError as again:
                # Someone keeps changing the record right now: not a business rejection, so try
                # the whole message again later instead of parking it.
                raise TransientError(
                    "S/4HANA Cloud: the sales area changed again during the update "
                    f"(HTTP 412 twice); retrying later: {again.backend_message or again.message}",
                    status=412,
                    backend_message=again.backend_message,
                ) from again
        return self._s4_result(Outcome.UPDATED, 200, keys, updated.status, updated.raw)

    def _s4_result(
        self, outcome: Outcome, status: int, keys: dict[str, str], backend: int, raw: bytes
    ) -> FlowResult:
        return FlowResult(
            outcome=outcome,
            http_status=status,
            flow=FLOW_NAME,
            route=Route.S4HC.value,
            target="s4hc",
            keys=keys,
            backend_status=backend,
        )

    async def _to_erp(
        self,
        message: ErpAccountDetailsMessage | ErpAccountsMessage,
        decision: RouteDecision,
        trace: Trace,
        *,
        message_id: str,
    ) -> FlowResult:
        control = self.options.idoc_control
        if isinstance(message, ErpAccountsMessage):
            idoc = idoc_from_erp_accounts(message, control)
            keys = {"Customer": (message.erpaccount.number or "").strip()}
        else:
            idoc = idoc_from_erp_account_details(message, control)
            keys = _keys_of(sales_area_key(message, self.options.s4_mapping))
        trace.snapshot("mapped.idoc", "application/xml", idoc)
        sap_message_id = stable_message_id(message_id)
        with trace.step("erp.send_idoc", detail=f"SapMessageId {sap_message_id}") as step:
            receipt = await self.erp.send(idoc, message_id=sap_message_id)
            step.reply(receipt.status, receipt.raw)
        return FlowResult(
            outcome=Outcome.IDOC_SENT,
            http_status=200,
            flow=FLOW_NAME,
            route=decision.route.value,
            target="erp",
            keys=keys,
            backend_status=receipt.status,
            idoc_number=receipt.idoc_numbers[0],
        )

    # -- dry run ------------------------------------------------------------------------------

    async def dry_run(self, payload: bytes) -> DryRunReport:
        """What :meth:`run` would do with ``payload`` now, without writing to any system.

        Operators use it before retrying or resubmitting a dead letter: the mapping's checks run
        as in :meth:`run`, S/4 gets only GET requests, an IDoc is validated against the packaged
        DEBMAS07 XSD instead of being sent. Errors are reported, never raised.
        """
        route: str | None = None
        keys: dict[str, str] = {}
        try:
            message = _parse(payload)
            decision = decide_route(message)
            route = decision.route.value
            if decision.route == Route.DISCARD:
                return DryRunReport(
                    outcome="would_discard",
                    summary=f"would discard, nothing sent: {decision.reason}",
                    flow=FLOW_NAME,
                    route=route,
                )
            if decision.route == Route.S4HC:
                assert isinstance(message, ErpAccountDetailsMessage)
                key = sales_area_key(message, self.options.s4_mapping)
                keys = _keys_of(key)
                return await self._dry_run_s4(message, key)
            return self._dry_run_erp(message, route)
        except D365SapError as error:
            invalid = isinstance(error, ValidationError)
            prefix = "invalid, nothing would be sent" if invalid else "could not check the target"
            return DryRunReport(
                outcome=INVALID if invalid else CHECK_FAILED,
                summary=f"{prefix}: {error.message}",
                flow=FLOW_NAME,
                route=route,
                target=_target_of(route),
                keys=keys,
                problems=(
                    Problem(error.field, error.reason)
                    if isinstance(error, ValidationError)
                    else Problem(None, error.message),
                ),
            )

    async def _dry_run_s4(
        self, message: ErpAccountDetailsMessage, key: SalesAreaKey
    ) -> DryRunReport:
        keys = _keys_of(key)
        found = await self.s4.query(SALES_AREA_SET, equals=keys, select=list(KEY_PROPERTIES))
        checks = [f"GET {SALES_AREA_SET} on the four keys: {len(found.entities)} result(s)"]
        report = functools.partial(
            DryRunReport, flow=FLOW_NAME, route=Route.S4HC.value, target="s4hc", keys=keys
        )
        if found.entities:
            etag = _etag_of(found.entities[0])
            patch = PlannedRequest(
                "PATCH",
                self.s4.url(entity_path(SALES_AREA_SET, keys)),
                "application/json",
                _pretty(update_payload(message, self.options.s4_mapping)),
                {"If-Match": etag} if etag else {},
            )
            summary = f"would update the sales area {key}: PATCH {patch.url}"
            return report(outcome="would_update", summary=summary, request=patch, checks=(*checks,))
        body = create_payload(message, self.options.s4_mapping)
        request = PlannedRequest(
            "POST", self.s4.url(SALES_AREA_SET), "application/json", _pretty(body)
        )
        try:
            await self.s4.read(CUSTOMER_SET, {"Customer": key.customer})
            checks.append(f"GET {CUSTOMER_SET}: customer {key.customer} exists")
        except NotFoundError as missing:
            checks.append(f"GET {CUSTOMER_SET}: customer {key.customer} not found")
            return report(
                outcome=WOULD_FAIL,
                summary=f"S/4HANA Cloud has no customer {key.customer}: the create would fail",
                request=request,
                problems=(Problem("Customer", f"S/4 answered: {missing.backend_message}"),),
                checks=tuple(checks),
            )
        except D365SapError as unknown:
            # Only a hint: the create itself decides, so report what could not be checked.
            checks.append(f"GET {CUSTOMER_SET}: not checked ({unknown.message})")
        return report(
            outcome="would_create",
            summary=f"would create the sales area {key}: POST {request.url}",
            request=request,
            checks=tuple(checks),
        )

    def _dry_run_erp(
        self, message: ErpAccountDetailsMessage | ErpAccountsMessage, route: str
    ) -> DryRunReport:
        if isinstance(message, ErpAccountsMessage):
            keys = {"Customer": (message.erpaccount.number or "").strip()}
        else:
            keys = _keys_of(sales_area_key(message, self.options.s4_mapping))
        idoc = idoc_for_message(message, self.options.idoc_control)
        request = PlannedRequest("POST", self.erp.url, self.erp.content_type, idoc.decode("utf-8"))
        report = functools.partial(
            DryRunReport, flow=FLOW_NAME, route=route, target="erp", keys=keys, request=request
        )
        check = "DEBMAS07 IDoc validated against the packaged XSD"
        problems = validate_debmas(idoc)
        if problems:
            return report(
                outcome=INVALID,
                summary=f"the IDoc breaks the DEBMAS07 schema ({len(problems)} problem(s))",
                problems=tuple(Problem(p.field, p.message) for p in problems),
                checks=(f"{check}: invalid",),
            )
        return report(
            outcome="would_send_idoc",
            summary=f"would send a {self.options.idoc_control.idoctyp} IDoc to SAP ERP",
            checks=(f"{check}: valid",),
        )


def _target_of(route: str | None) -> str | None:
    if route == Route.S4HC.value:
        return "s4hc"
    if route in (Route.ERP_ACCOUNT.value, Route.ERP_ACCOUNT_DETAIL.value):
        return "erp"
    return None


def _pretty(body: dict[str, object]) -> str:
    return json.dumps(body, ensure_ascii=False, indent=2)
