"""Customer flow decisions with scripted back ends (unit level; end to end lives in tests/e2e)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from d365sap.config import IdocControlSettings
from d365sap.connectors.idoc import IdocClient, IdocReceipt
from d365sap.connectors.s4_odata import ODataReply, S4ODataClient
from d365sap.engine.trace import Trace
from d365sap.engine.types import Description
from d365sap.errors import ConflictError, PreconditionFailedError, TransientError
from d365sap.flows.customer import CustomerFlow, CustomerFlowOptions
from d365sap.flows.result import Outcome
from d365sap.mapping.s4_sales_area import S4MappingOptions
from support.examples import example

pytestmark = pytest.mark.anyio


class ScriptedS4:
    """Answers from a script; records calls."""

    def __init__(
        self,
        *,
        found: bool,
        create_error: Exception | None = None,
        update_errors: list[Exception] | None = None,
    ) -> None:
        self.found = found
        self.create_error = create_error
        self.update_errors = list(update_errors or [])
        self.calls: list[tuple[str, Any]] = []

    async def query(self, entity_set: str, **kwargs: Any) -> ODataReply:
        self.calls.append(("query", kwargs))
        entities = [{"__metadata": {"etag": 'W/"1"'}}] if self.found else []
        return ODataReply(status=200, entities=entities)

    async def create(self, entity_set: str, body: dict[str, Any]) -> ODataReply:
        self.calls.append(("create", body))
        if self.create_error:
            raise self.create_error
        return ODataReply(status=201, entity=body)

    async def read(self, entity_set: str, keys: dict[str, str]) -> ODataReply:
        self.calls.append(("read", keys))
        return ODataReply(status=200, entity={}, etag='W/"2"')

    async def update(
        self,
        entity_set: str,
        keys: dict[str, str],
        body: dict[str, Any],
        *,
        etag: str | None = None,
    ) -> ODataReply:
        self.calls.append(("update", etag))
        if self.update_errors:
            raise self.update_errors.pop(0)
        return ODataReply(status=204)


class ScriptedErp:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.sent: list[tuple[bytes, str]] = []

    async def send(self, idoc: bytes, *, message_id: str) -> IdocReceipt:
        self.sent.append((idoc, message_id))
        if self.error:
            raise self.error
        return IdocReceipt(
            idoc_numbers=("0000000000000001",), transfer_id=None, message_id=message_id, status=200
        )


def flow(s4: ScriptedS4, erp: ScriptedErp | None = None) -> CustomerFlow:
    options = CustomerFlowOptions(s4_mapping=S4MappingOptions(), idoc_control=IdocControlSettings())
    return CustomerFlow(
        s4=cast(S4ODataClient, s4), erp=cast(IdocClient, erp or ScriptedErp()), options=options
    )


async def test_create_conflict_falls_back_to_update() -> None:
    s4 = ScriptedS4(found=False, create_error=ConflictError("already exists", status=400))
    trace = Trace()
    result = await flow(s4).run(example("in_erpaccountdetails_S4HC.xml"), trace, message_id="m")
    assert result.outcome == Outcome.UPDATED
    assert [c[0] for c in s4.calls] == ["query", "create", "read", "update"]
    assert s4.calls[-1] == ("update", 'W/"2"')
    assert [s.status for s in trace.steps if s.name == "s4.create_sales_area"] == ["conflict"]


async def test_precondition_failure_rereads_the_etag_once() -> None:
    s4 = ScriptedS4(found=True, update_errors=[PreconditionFailedError("412", status=412)])
    result = await flow(s4).run(example("in_erpaccountdetails_S4HC.xml"), Trace(), message_id="m")
    assert result.outcome == Outcome.UPDATED
    assert [c for c in s4.calls if c[0] in ("update", "read")] == [
        ("update", 'W/"1"'),
        (
            "read",
            {
                "Customer": "17100001",
                "SalesOrganization": "1710",
                "DistributionChannel": "10",
                "Division": "00",
            },
        ),
        ("update", 'W/"2"'),
    ]


async def test_second_precondition_failure_is_retried_later() -> None:
    s4 = ScriptedS4(found=True, update_errors=[PreconditionFailedError("412", status=412)] * 2)
    result = await flow(s4).run(example("in_erpaccountdetails_S4HC.xml"), Trace(), message_id="m")
    assert result.outcome == Outcome.ERROR
    assert result.error is not None and result.error.retryable
    assert result.retry_hint() == (True, None)


async def test_invalid_input_sends_nothing() -> None:
    s4, erp = ScriptedS4(found=False), ScriptedErp()
    body = example("in_erpaccountdetails_S4HC.xml").replace(b"<sap_spart>00</sap_spart>", b"")
    result = await flow(s4, erp).run(body, Trace(), message_id="m")
    assert result.outcome == Outcome.ERROR
    assert result.http_status == 400
    assert result.error is not None and "sap_spart" in (result.error.field or "")
    assert s4.calls == [] and erp.sent == []


async def test_idoc_message_id_is_stable_per_message() -> None:
    erp = ScriptedErp()
    f = flow(ScriptedS4(found=False), erp)
    await f.run(example("in_erpaccounts_ECC.xml"), Trace(), message_id="m-1")
    await f.run(example("in_erpaccounts_ECC.xml"), Trace(), message_id="m-1")
    await f.run(example("in_erpaccounts_ECC.xml"), Trace(), message_id="m-2")
    ids = [message_id for _, message_id in erp.sent]
    assert ids[0] == ids[1] != ids[2]


async def test_timeouts_map_to_504() -> None:
    erp = ScriptedErp(error=TransientError("SAP ERP: timed out: ReadTimeout"))
    result = await flow(ScriptedS4(found=False), erp).run(
        example("in_erpaccountdetails_ECC.xml"), Trace(), message_id="m"
    )
    assert result.http_status == 504
    assert result.error is not None and result.error.retryable


def test_describe_never_raises() -> None:
    f = flow(ScriptedS4(found=False))
    assert f.describe(b"<broken") == Description()
    assert f.describe(example("in_erpaccountdetails_S4HC.xml")) == Description(
        route="s4hc", business_key="17100001/1710/10/00", queue="s4hc"
    )
    assert f.describe(example("in_erpaccounts_ECC.xml")).queue == "erp"
