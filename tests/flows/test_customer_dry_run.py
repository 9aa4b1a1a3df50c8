"""The customer flow's dry run: the real clients over a scripted transport, reads only."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest

from d365sap.config import IdocControlSettings
from d365sap.connectors.idoc import IdocClient
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.dry_run import CHECK_FAILED, INVALID, WOULD_FAIL
from d365sap.flows.customer import CustomerFlow, CustomerFlowOptions
from d365sap.mapping.s4_sales_area import S4MappingOptions
from support.examples import example

pytestmark = pytest.mark.anyio

S4_URL = "http://s4.test/sap/opu/odata/sap/API_BUSINESS_PARTNER"
ERP_URL = "http://erp.test/sap/bc/srt/idoc?sap-client=001"
S4HC = example("in_erpaccountdetails_S4HC.xml")
ECC = example("in_erpaccountdetails_ECC.xml")
ACCOUNTS = example("in_erpaccounts_ECC.xml")

Handler = Callable[[httpx2.Request], httpx2.Response]


class Backend:
    """Answers S/4 reads from a script and records every request; writes are a test failure."""

    def __init__(self, *, sales_area: bool = False, customer: bool = True, down: bool = False):
        self.sales_area = sales_area
        self.customer = customer
        self.down = down
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert request.method == "GET", f"a dry run sent {request.method} {request.url}"
        if self.down:
            return httpx2.Response(503, text="Service Unavailable")
        path = request.url.path
        if path.endswith("/A_CustomerSalesArea"):
            found = [{"__metadata": {"etag": 'W/"x"'}}] if self.sales_area else []
            return httpx2.Response(200, json={"d": {"results": found}})
        if "/A_Customer(" in path:
            if self.customer:
                return httpx2.Response(200, json={"d": {"Customer": "17100001"}})
            error = {"error": {"code": "/IWBEP/CM_MGW_RT/020", "message": {"value": "not found"}}}
            return httpx2.Response(404, json=error)
        return httpx2.Response(500)


def make_flow(backend: Backend, control: IdocControlSettings | None = None) -> CustomerFlow:
    transport = httpx2.MockTransport(backend)
    return CustomerFlow(
        s4=S4ODataClient(S4_URL, user="u", password="p", transport=transport),
        erp=IdocClient(ERP_URL, user="u", password="p", transport=transport),
        options=CustomerFlowOptions(
            s4_mapping=S4MappingOptions(), idoc_control=control or IdocControlSettings()
        ),
    )


async def test_new_sales_area_would_be_created_with_the_deep_insert() -> None:
    backend = Backend()

    report = await make_flow(backend).dry_run(S4HC)

    assert report.outcome == "would_create"
    assert report.ok
    assert report.request is not None
    assert (report.request.method, report.request.url) == ("POST", f"{S4_URL}/A_CustomerSalesArea")
    body = json.loads(report.request.body)
    assert body["Customer"] == "17100001"
    assert body["to_SalesAreaTax"]["results"][0]["CustomerTaxCategory"] == "UTXJ"
    assert len(backend.requests) == 2
    assert report.keys["SalesOrganization"] == "1710"


async def test_existing_sales_area_would_be_updated_on_its_keyed_url() -> None:
    report = await make_flow(Backend(sales_area=True)).dry_run(S4HC)

    assert report.outcome == "would_update"
    assert report.request is not None
    assert report.request.method == "PATCH"
    assert report.request.url == (
        f"{S4_URL}/A_CustomerSalesArea(Customer='17100001',SalesOrganization='1710',"
        "DistributionChannel='10',Division='00')"
    )
    assert report.request.headers == {"If-Match": 'W/"x"'}
    assert "to_SalesAreaTax" not in json.loads(report.request.body)


async def test_unknown_customer_would_fail() -> None:
    report = await make_flow(Backend(customer=False)).dry_run(S4HC)

    assert report.outcome == WOULD_FAIL
    assert not report.ok
    assert report.problems[0].field == "Customer"
    assert "17100001" in report.summary


async def test_unreachable_s4_is_a_failed_check_not_an_exception() -> None:
    report = await make_flow(Backend(down=True)).dry_run(S4HC)

    assert report.outcome == CHECK_FAILED
    assert "503" in report.summary


async def test_invalid_input_names_the_field_and_asks_nobody() -> None:
    backend = Backend()
    payload = S4HC.replace(b"<sap_vkorg>1710</sap_vkorg>", b"<sap_vkorg></sap_vkorg>")

    report = await make_flow(backend).dry_run(payload)

    assert report.outcome == INVALID
    assert report.problems[0].field == "erpaccountdetails/linkederporg/sap_vkorg"
    assert backend.requests == []


async def test_discard_route_reports_the_reason() -> None:
    payload = ECC.replace(
        b"<erpsystemtype>ECC</erpsystemtype>", b"<erpsystemtype>SAP</erpsystemtype>"
    )

    report = await make_flow(Backend()).dry_run(payload)

    assert report.outcome == "would_discard"
    assert "unsupported erpsystemtype 'SAP'" in report.summary
    assert report.request is None


@pytest.mark.parametrize("payload", [ECC, ACCOUNTS])
async def test_erp_routes_would_send_a_schema_valid_idoc(payload: bytes) -> None:
    backend = Backend()

    report = await make_flow(backend).dry_run(payload)

    assert report.outcome == "would_send_idoc", report.problems
    assert report.target == "erp"
    assert report.request is not None
    assert report.request.url == ERP_URL
    assert "<IDOCTYP>DEBMAS07</IDOCTYP>" in report.request.body
    assert report.checks == ("DEBMAS07 IDoc validated against the packaged XSD: valid",)
    assert backend.requests == []


async def test_an_idoc_breaking_the_xsd_is_invalid_with_segment_and_field() -> None:
    control = IdocControlSettings(idoctyp="DEBMAS06", root_element="DEBMAS07")

    report = await make_flow(Backend(), control).dry_run(ACCOUNTS)

    assert report.outcome == INVALID
    assert [p.field for p in report.problems] == ["EDI_DC40-IDOCTYP"]
    assert "DEBMAS07" in report.problems[0].message
