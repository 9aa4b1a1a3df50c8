"""S/4's SalesOrderBulkConfirmation read into the order's outcome (SOAP 1.1, 1.2 or bare)."""

from __future__ import annotations

import pytest

from d365sap.errors import ValidationError
from d365sap.mapping.sales_order_confirmation import parse_confirmation

ORDER = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3a01"
CREATED = f"""<n0:SalesOrderBulkConfirmation xmlns:n0="http://sap.com/xi/SD-SLS"
    xmlns:yy1="http://SAPCustomFields.com/YY1_">
  <MessageHeader><ID>C0</ID><UUID>u</UUID><ReferenceID>BULK-1</ReferenceID></MessageHeader>
  <SalesOrder><SalesOrderID>4711</SalesOrderID><PurchaseOrderByCustomer>PO-1</PurchaseOrderByCustomer>
    <yy1:YY1_CRMOrderID>{ORDER}</yy1:YY1_CRMOrderID></SalesOrder>
  <Log><BusinessDocumentProcessingResultCode>3</BusinessDocumentProcessingResultCode>
    <MaximumLogItemSeverityCode>1</MaximumLogItemSeverityCode>
    <Item><TypeID>311(V1)</TypeID><SeverityCode>1</SeverityCode>
      <Note>Standard Order 4711 has been saved</Note></Item></Log>
</n0:SalesOrderBulkConfirmation>"""
FAILED = f"""<n0:SalesOrderBulkConfirmation xmlns:n0="http://sap.com/xi/SD-SLS"
    xmlns:yy1="http://SAPCustomFields.com/YY1_">
  <MessageHeader><ID>C1</ID><ReferenceID>BULK-1</ReferenceID></MessageHeader>
  <SalesOrder><yy1:YY1_CRMOrderID>{ORDER}</yy1:YY1_CRMOrderID></SalesOrder>
  <Log><BusinessDocumentProcessingResultCode>5</BusinessDocumentProcessingResultCode>
    <MaximumLogItemSeverityCode>3</MaximumLogItemSeverityCode>
    <Item><TypeID>801(V1)</TypeID><SeverityCode>2</SeverityCode><Note>just a warning</Note></Item>
    <Item><TypeID>810(V1)</TypeID><SeverityCode>3</SeverityCode>
      <ReferenceMessageElementName>SalesOrder[1]/Item[2]/Material</ReferenceMessageElementName>
      <Note>Product XX-1 does not exist</Note></Item></Log>
</n0:SalesOrderBulkConfirmation>"""


def soap(body: str, version: str = "1.1") -> bytes:
    ns = (
        "http://schemas.xmlsoap.org/soap/envelope/"
        if version == "1.1"
        else "http://www.w3.org/2003/05/soap-envelope"
    )
    return f'<e:Envelope xmlns:e="{ns}"><e:Header/><e:Body>{body}</e:Body></e:Envelope>'.encode()


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_created_order(version: str) -> None:
    confirmation = parse_confirmation(soap(CREATED, version))
    assert confirmation.created
    assert (confirmation.confirmation_id, confirmation.reference_id) == ("C0", "BULK-1")
    assert (confirmation.order_id, confirmation.sales_order) == (ORDER, "4711")
    assert (confirmation.purchase_order, confirmation.max_severity) == ("PO-1", 1)
    assert confirmation.notes() == "311(V1) Standard Order 4711 has been saved"


def test_a_failed_order_keeps_s4s_errors() -> None:
    confirmation = parse_confirmation(FAILED.encode())
    assert not confirmation.created and confirmation.sales_order is None
    assert confirmation.result_code == "5"
    assert confirmation.notes() == (
        "810(V1) Product XX-1 does not exist (SalesOrder[1]/Item[2]/Material)"
    )
    assert len(confirmation.log) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (soap("<x/><y/>"), "Envelope/Body"),
        (b"<other/>", "body"),
        (
            CREATED.replace("<yy1:YY1_CRMOrderID>" + ORDER + "</yy1:YY1_CRMOrderID>", "").encode(),
            "SalesOrderBulkConfirmation/SalesOrder/YY1_CRMOrderID",
        ),
        (
            CREATED.replace(
                "<BusinessDocumentProcessingResultCode>3</BusinessDocumentProcessingResultCode>", ""
            ).encode(),
            "SalesOrderBulkConfirmation/Log/BusinessDocumentProcessingResultCode",
        ),
        (
            FAILED.replace(
                "<SeverityCode>3</SeverityCode>", "<SeverityCode>high</SeverityCode>"
            ).encode(),
            "SalesOrderBulkConfirmation/Log/Item[2]/SeverityCode",
        ),
        (b"<!DOCTYPE d [<!ENTITY x 'y'>]><d/>", "body"),
    ],
)
def test_unreadable_confirmations_name_the_element(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_confirmation(body)
    assert caught.value.field == field
