"""Sales orders end to end: one order in S/4 per Dynamics order, however often it is delivered.

Duplicate deliveries from every side: S/4's acknowledgement lost after it took the bulk message
(the message is sent again with the same ``MessageHeader/ID``), the webhook and the delta poll
reporting one submission, and orders packed several to a bulk message.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from d365sap.config import RetrySettings
from d365sap.config_sales_orders import ConfirmationSettings
from support.e2e import MakeStack
from support.sales_orders import ACC_1002, CONFIRMATION_USER, CREATED, OrderDesk

pytestmark = pytest.mark.e2e
ORDERS = "sales_order"


def _desk(make_stack: MakeStack, **sales_orders: Any) -> OrderDesk:
    stack = make_stack(
        dataverse=True,
        inbound={"users": [CONFIRMATION_USER]},
        runtime={"retry": RetrySettings(base_delay_seconds=0.2, jitter=0.0)},
        sales_orders={"confirmation": ConfirmationSettings(channel="push"), **sales_orders},
    )
    desk = OrderDesk(stack)
    desk.register_webhook()
    desk.push_confirmations()
    desk.register_customer(ACC_1002, "17100002")
    return desk


def _settled(messages: list[dict[str, Any]], count: int) -> bool:
    return len(messages) >= count and all(m["status"] in ("done", "failed") for m in messages)


def test_a_lost_acknowledgement_is_sent_again_and_creates_each_order_once(
    make_stack: MakeStack,
) -> None:
    desk = _desk(make_stack, bulk_window_ms=400.0)
    try:
        fault = {"kind": "drop_after_commit", "count": 1}
        desk.stack.http.post(f"{desk.stack.env.s4_url}/emulator/faults/next", json=fault)
        first, _ = desk.create_order([("CP-100", 1)])
        second, _ = desk.create_order([("SK-20", 2)])
        desk.submit(first)
        desk.submit(second)
        for order_id in (first, second):
            desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == CREATED)

        messages = desk.wait_messages(ORDERS, lambda found: _settled(found, 2))
        assert [(m["status"], m["outcome"]) for m in messages] == [("done", "sent")] * 2
        assert all(m["attempts"] == 2 for m in messages)  # the lost answer cost one retry
        received = desk.s4_messages()
        assert [m["state"] for m in received] == ["processed", "duplicate"]
        assert received[0]["message_id"] == received[1]["message_id"]  # same MessageHeader/ID
        assert received[0]["order_count"] == 2
        assert len(desk.s4_orders(first)) == 1 and len(desk.s4_orders(second)) == 1
    finally:
        desk.close()


def test_orders_ready_together_share_bulk_messages(make_stack: MakeStack) -> None:
    desk = _desk(make_stack, bulk_window_ms=500.0, bulk_size=3)
    try:
        orders = [desk.create_order([("CP-100", n + 1), ("SK-20", 1)])[0] for n in range(5)]
        for order_id in orders:
            desk.submit(order_id)
        for order_id in orders:
            desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == CREATED)

        received = desk.s4_messages()
        assert sum(m["order_count"] for m in received) == 5
        assert len(received) < 5 and max(m["order_count"] for m in received) > 1
        assert max(m["order_count"] for m in received) <= 3  # bulk_size
        numbers = {desk.order_row(order_id)["sap_salesordernumber"] for order_id in orders}
        assert len(numbers) == 5
        details = [desk.stack.message(m["id"]) for m in desk.messages(ORDERS)]
        bulks = {d["result"]["bulk"]["message_header_id"] for d in details}
        assert bulks == {m["message_id"] for m in received}
    finally:
        desk.close()


def test_webhook_and_delta_poll_reporting_one_submission_create_one_order(
    make_stack: MakeStack,
) -> None:
    stack = make_stack(
        dataverse=True,
        dataverse_triggers={"poll_interval_seconds": 1.0},
        sales_orders={"poll_submitted": True},
    )
    desk = OrderDesk(stack)
    try:
        desk.register_webhook()
        desk.register_customer(ACC_1002, "17100002")
        time.sleep(1.5)  # the poll's first pass records the orders as they are
        order_id, _ = desk.create_order([("CP-100", 1)])
        desk.submit(order_id)

        def both_settled(found: list[dict[str, Any]]) -> bool:
            return _settled(found, 2)

        messages = desk.wait_messages(ORDERS, both_settled, timeout=20)
        assert sorted(m["outcome"] for m in messages) == ["already_sent", "sent"]
        desk.s4_wait()
        assert len(desk.s4_orders(order_id)) == 1
        assert len(desk.s4_messages()) == 1
    finally:
        desk.close()
