"""Reading IDoc status and creating ERP customers: the client against the ERP emulator on loopback.

The parsing tests use answers as SAP's SOAP runtime writes them; everything else sends real IDocs
built by the create mapping to the emulator and checks the customer master it shows.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from d365sap.config import IdocControlSettings
from d365sap.config_create import CustomerNumberRange, ErpCreateSettings
from d365sap.connectors.idoc import IdocClient, stable_message_id
from d365sap.connectors.idoc_status import (
    IdocStatus,
    StatusRecord,
    parse_status_reply,
    status_fault,
)
from d365sap.emulators.erp.app import create_app
from d365sap.emulators.settings import ErpEmulatorSettings
from d365sap.errors import NotFoundError, PermanentError, TransientError
from d365sap.mapping.debmas_create import create_idoc
from d365sap.model.new_customer import (
    CustomerAddress,
    DataverseReferences,
    NewCustomer,
    NewCustomerGeneral,
    NewCustomerSalesArea,
)
from d365sap.web.serving import BackgroundServer, serving

pytestmark = pytest.mark.anyio

STATUS_PATH = "/sap/bc/srt/rfc/sap/zidoc_read_completely/001/zidoc_read_completely/binding"
REPLY = b"""<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
<soap-env:Header/><soap-env:Body>
<n0:IdocReadCompletelyResponse xmlns:n0="urn:sap-com:document:sap:soap:functions:mc-style">
<IdocControl><Docnum>0000000000004711</Docnum><Status>53</Status></IdocControl>
<IntEdids>
<item><Status>64</Status><Statxt>IDoc ready to be transferred to application</Statxt></item>
<item><Status>53</Status><Statxt>Customer &amp; has been created for company code &amp;</Statxt>
<Stapa1>0000300007</Stapa1><Stapa2>1000</Stapa2><Stapa3/><Stapa4/>
<Statyp>S</Statyp><Stamqu>SAP</Stamqu><Stamid>F2</Stamid><Stamno>171</Stamno></item>
</IntEdids><NumberOfStatusRecords>2</NumberOfStatusRecords>
</n0:IdocReadCompletelyResponse></soap-env:Body></soap-env:Envelope>"""
FAULT = b"""<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
<soap-env:Body><soap-env:Fault><faultcode>soap-env:Client</faultcode>
<faultstring>IDoc 99 does not exist</faultstring><detail>
<n0:IdocReadCompletely.Exception xmlns:n0="urn:sap-com:document:sap:soap:functions:mc-style">
<Name>DocumentNotExist</Name><Text>IDoc 0000000000000099 does not exist</Text>
</n0:IdocReadCompletely.Exception></detail></soap-env:Fault></soap-env:Body></soap-env:Envelope>"""


def test_status_reply_is_read_with_the_created_number() -> None:
    status = parse_status_reply(REPLY, docnum="4711")
    assert (status.docnum, status.status, status.posted, status.final) == (
        "0000000000004711",
        "53",
        True,
        True,
    )
    assert status.records[-1].parameters == ("0000300007", "1000")
    assert status.created_customer() == "300007"
    latest = status.latest()
    assert latest is not None
    assert latest.expanded_text() == "Customer 0000300007 has been created for company code 1000"


def test_a_change_message_is_no_created_customer() -> None:
    record = StatusRecord("53", "Changes have been made", "F2", "056", "S", ("0000100123",))
    assert IdocStatus("1", "53", (record,)).created_customer() is None
    failed = IdocStatus("1", "51", (StatusRecord("51", "Customer 4711 does not exist"),))
    assert failed.failed and failed.final and failed.created_customer() is None
    assert not IdocStatus("1", "64", ()).final


def test_faults_and_garbage() -> None:
    error = status_fault(FAULT, docnum="99")
    assert isinstance(error, NotFoundError)
    assert "DocumentNotExist" in str(error)
    assert status_fault(b"<ok/>", docnum="1") is None
    with pytest.raises(PermanentError, match="no IdocReadCompletelyResponse"):
        parse_status_reply(b"<ok/>", docnum="1")
    with pytest.raises(PermanentError, match="unreadable"):
        parse_status_reply(b"<oops", docnum="1")


@pytest.fixture(scope="module")
def erp_server() -> Iterator[BackgroundServer]:
    with serving(create_app(ErpEmulatorSettings()), name="erp-emulator-status") as server:
        yield server


@pytest.fixture
def erp(erp_server: BackgroundServer) -> str:
    httpx2.post(erp_server.url + "/emulator/reset").raise_for_status()
    return erp_server.url


def client(url: str, *, status_url: str | None = None) -> IdocClient:
    return IdocClient(
        url + "/sap/bc/srt/idoc?sap-client=001",
        user="IDOC_USER",
        password="Welcome1!",
        status_url=url + STATUS_PATH if status_url is None else status_url,
    )


def new_customer(name: str = "Neukunde Pumpen AG", country: str = "DE") -> NewCustomer:
    return NewCustomer(
        system_type="ECC",
        general=NewCustomerGeneral(
            name1=name,
            search_term="NEUKUNDE",
            language="DE",
            address=CustomerAddress(street="Ruhrallee 1", city="Essen", country=country),
        ),
        sales_areas=(
            NewCustomerSalesArea(
                sales_organization="1000",
                distribution_channel="10",
                division="00",
                currency="EUR",
            ),
        ),
        source=DataverseReferences(account_id="a-1", erp_account_id="e-1"),
    )


CONTROL = IdocControlSettings()


async def test_create_reads_the_number_sap_assigned(erp: str) -> None:
    idoc = create_idoc(new_customer(), CONTROL, ErpCreateSettings())
    async with client(erp) as sap:
        created = await sap.create_customer(idoc, message_id=stable_message_id("create-1"))
    assert created.kunnr == "100201"
    assert created.status.posted
    shown = httpx2.get(f"{erp}/emulator/customers/{created.kunnr}").json()
    assert shown["kna1"]["NAME1"] == "Neukunde Pumpen AG"
    assert shown["kna1"]["KTOKD"] == "0001"
    assert [area["vkorg"] for area in shown["sales_areas"]] == ["1000"]
    assert shown["changed_by_idocs"] == list(created.receipt.idoc_numbers)


async def test_the_same_message_id_does_not_create_twice(erp: str) -> None:
    idoc = create_idoc(new_customer(), CONTROL, ErpCreateSettings())
    message_id = stable_message_id("create-again")
    async with client(erp) as sap:
        first = await sap.create_customer(idoc, message_id=message_id)
        again = await sap.create_customer(idoc, message_id=message_id)
    assert (first.kunnr, again.kunnr) == ("100201", "100201")
    assert first.receipt.idoc_numbers == again.receipt.idoc_numbers
    assert httpx2.get(f"{erp}/emulator/customers/100202").status_code == 404
    assert len(httpx2.get(f"{erp}/emulator/idocs").json()["idocs"]) == 1


async def test_external_number_range(erp: str) -> None:
    settings = ErpCreateSettings(
        account_group="ZEXT",
        number_range=CustomerNumberRange.model_validate({"from": "900000", "to": "999999"}),
    )
    kunnr = settings.number_range.number(41) if settings.number_range else ""
    idoc = create_idoc(new_customer(), CONTROL, settings, kunnr=kunnr)
    async with client(erp) as sap:
        created = await sap.create_customer(idoc, message_id=stable_message_id("ext"), kunnr=kunnr)
    assert created.kunnr == "900041"
    assert httpx2.get(f"{erp}/emulator/customers/900041").json()["kna1"]["KTOKD"] == "ZEXT"


async def test_a_refused_creation_is_permanent_with_sap_text(erp: str) -> None:
    settings = ErpCreateSettings(account_group="9999")
    idoc = create_idoc(new_customer(), CONTROL, settings)
    async with client(erp) as sap:
        with pytest.raises(PermanentError, match="account group 9999 is not defined") as caught:
            await sap.create_customer(idoc, message_id=stable_message_id("bad-group"))
    assert caught.value.code == "51"
    assert "not posted (status 51)" in str(caught.value)


async def test_unknown_idoc_and_missing_status_url(erp: str) -> None:
    async with client(erp) as sap:
        with pytest.raises(NotFoundError, match="DocumentNotExist"):
            await sap.read_status("424242")
    async with client(erp, status_url="") as sap:
        with pytest.raises(PermanentError, match="no status_url"):
            await sap.read_status("1")


async def test_an_open_status_is_transient() -> None:
    reads = 0

    def erp(request: httpx2.Request) -> httpx2.Response:
        nonlocal reads
        reads += 1
        body = REPLY.replace(
            b"<Status>53</Status></IdocControl>", b"<Status>64</Status></IdocControl>"
        )
        return httpx2.Response(200, content=body, headers={"content-type": "text/xml"})

    sap = IdocClient(
        "http://erp.test/idoc",
        status_url="http://erp.test/status",
        transport=httpx2.MockTransport(erp),
    )
    async with sap:
        with pytest.raises(TransientError, match="not posted yet"):
            await sap.await_posting("4711", attempts=3, interval=0)
    assert reads == 3
