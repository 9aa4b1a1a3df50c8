"""What the sales order flow would do with a message now, without sending or writing anything.

An operator about to retry or resubmit an order's message sees: whether the order already went
out (and so would not be sent again), whether it is for S/4 at all, whether its customer's keys
are in the registry, the mapped ``SalesOrder`` checked against the schema, whether S/4 already
holds an order for it (API_SALES_ORDER_SRV), and the exact SOAP request that would be posted
(in a bulk of its own here; the real run may pack it with others). Reads only: the outbox, the
key registry, the order in Dataverse, API_SALES_ORDER_SRV.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.connectors.s4_soap import CONTENT_TYPE, SOAP_ACTION, soap_envelope
from d365sap.engine.dry_run import (
    CHECK_FAILED,
    INVALID,
    WOULD_FAIL,
    DryRunReport,
    PlannedRequest,
    Problem,
)
from d365sap.engine.trace import Trace
from d365sap.errors import D365SapError, ValidationError
from d365sap.flows.sales_order import (
    DiscardedError,
    SalesOrderFlow,
    goes_out_anew,
    read_message,
)
from d365sap.flows.sales_order_messages import FLOW_NAME, ROUTE
from d365sap.mapping.sales_order import sales_order
from d365sap.mapping.sales_order_bulk import BulkHeader, bulk_request, order_problems, order_xml

PLACEHOLDER_ID = "ASSIGNED-WHEN-SENT"


async def dry_run(
    flow: SalesOrderFlow, reader: SalesOrderReader | None, payload: bytes
) -> DryRunReport:
    """The report for ``payload`` (see the module docstring); errors are reported, not raised."""
    keys: dict[str, str] = {}
    checks: list[str] = []
    report = functools.partial(DryRunReport, flow=FLOW_NAME, route=ROUTE, target="s4hc")
    try:
        message = read_message(payload)
        keys["SalesOrderID"] = str(message.order_id)
        earlier = await flow.store.call(lambda: flow.outbox.latest_for(str(message.order_id)))
        if earlier is not None and not goes_out_anew(earlier, earlier.message_id):
            return report(
                outcome="already_sent",
                summary=f"would not send: the order went out in bulk {earlier.batch_id} "
                f"({earlier.state}, message {earlier.message_id})",
                keys=keys,
                checks=(f"outbox: {earlier.state} in bulk {earlier.batch_id}",),
            )
        checks.append("outbox: not sent before" if earlier is None else f"outbox: {earlier.state}")
        try:
            order = await flow.order_of(message, Trace())
            flow.check_route(order)
        except DiscardedError as discard:
            return report(
                outcome="would_discard",
                summary=f"would discard, nothing sent: {discard.reason}",
                route="discard",
                target=None,
                keys=keys,
                checks=tuple(checks),
            )
        keys["OrderNumber"] = order.order_number
        sold_to = await flow.store.call(lambda: flow.customers.sold_to(order))
        if sold_to is None:
            return report(
                outcome=WOULD_FAIL,
                summary=f"customer {order.customer_id} is not synchronised with S/4HANA Cloud: "
                "the order would wait for it",
                keys=keys,
                problems=(Problem("customerid", "no confirmed S/4 sales area in the registry"),),
                checks=(*checks, "key registry: no S/4 keys for the customer"),
            )
        keys["SoldToParty"] = sold_to.customer
        checks.append(f"key registry: {sold_to.customer} in {sold_to.sales_area}")
        node = order_xml(sales_order(order, sold_to, flow.settings))
        problems = order_problems(node)
        header = BulkHeader(
            message_id=PLACEHOLDER_ID,
            message_uuid="00000000-0000-0000-0000-000000000000",
            created_at=datetime.now(UTC),
            sender_system=flow.settings.sender_business_system,
            recipient_system=flow.settings.recipient_business_system,
        )
        request = PlannedRequest(
            "POST",
            flow.settings.soap_url,
            CONTENT_TYPE,
            soap_envelope(bulk_request(header, [node])).decode("utf-8"),
            {"SOAPAction": SOAP_ACTION},
        )
        if problems:
            return report(
                outcome=INVALID,
                summary=f"the mapped order breaks the schema ({len(problems)} problem(s))",
                keys=keys,
                request=request,
                problems=tuple(Problem("SalesOrder", text) for text in problems),
                checks=(*checks, "schema: invalid"),
            )
        checks.append("schema: valid")
        if reader is not None:
            found = (await reader.find_orders([str(order.order_id)]))[str(order.order_id)]
            numbers = ", ".join(o.sales_order for o in found)
            checks.append(f"API_SALES_ORDER_SRV: {numbers or 'no order for it'}")
            if found:
                return report(
                    outcome=WOULD_FAIL,
                    summary=f"S/4 already holds order {numbers} for it: sending would duplicate",
                    keys=keys,
                    request=request,
                    problems=(Problem(None, f"S/4 order(s) {numbers} carry this order id"),),
                    checks=tuple(checks),
                )
        return report(
            outcome="would_send",
            summary=f"would send the order to S/4 ({len(order.lines)} line(s)) as "
            f"{sold_to.customer} in {sold_to.sales_area}",
            keys=keys,
            request=request,
            checks=tuple(checks),
        )
    except D365SapError as error:
        invalid = isinstance(error, ValidationError)
        return report(
            outcome=INVALID if invalid else CHECK_FAILED,
            summary=("invalid, nothing would be sent: " if invalid else "could not check: ")
            + error.message,
            keys=keys,
            problems=(
                Problem(error.field, error.reason)
                if isinstance(error, ValidationError)
                else Problem(None, error.message),
            ),
            checks=tuple(checks),
        )
