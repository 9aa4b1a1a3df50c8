"""Helpers for the SalesOrderBulkRequest_In tests: message builder, SOAP client, admin access."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import httpx2
from lxml import etree

SOAP_PATH = "/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in"
SO_ROOT = "/sap/opu/odata/sap/API_SALES_ORDER_SRV/"
PRODUCT_ROOT = "/sap/opu/odata/sap/API_PRODUCT_SRV/"
USER = ("S4_COMM_USER", "Welcome1!")
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
MEDIA = {"1.1": "text/xml; charset=utf-8", "1.2": "application/soap+xml; charset=utf-8"}
LCTI = (
    'itemListCompleteTransmissionIndicator="true" '
    'pricingElementListCompleteTransmissionIndicator="true" '
    'partnerListCompleteTransmissionIndicator="true" '
    'paymentPlanItemListCompleteTransmissionIndicator="true"'
)
ITEM_LCTI = (
    'pricingElementListCompleteTransmissionIndicator="true" '
    'partnerListCompleteTransmissionIndicator="true"'
)


def _el(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{escape(value)}</{name}>"


def _yy1(name: str, value: str | None) -> str:
    return "" if value is None else f"<yy1:{name}>{escape(value)}</yy1:{name}>"


@dataclass
class ItemSpec:
    """One ``Item``; ``None`` leaves an element out."""

    material: str | None = "CP-100"
    quantity: str | None = "2"
    unit: str | None = "EA"
    item_id: str | None = None
    price: str | None = None
    price_unit: str | None = None
    crm_item_id: str | None = None
    project_flag: str | None = None
    opportunity: str | None = None
    action: str = "01"
    partners: str = ""

    def xml(self) -> str:
        quantity = ""
        if self.quantity is not None:
            unit = f' unitCode="{self.unit}"' if self.unit else ""
            quantity = f"<RequestedQuantity{unit}>{self.quantity}</RequestedQuantity>"
        pricing = ""
        if self.price is not None:
            per = (
                f'<ConditionQuantity unitCode="{self.unit or "EA"}">{self.price_unit}'
                "</ConditionQuantity>"
                if self.price_unit
                else ""
            )
            pricing = (
                '<PricingElement actionCode="01"><ConditionType>PPR0</ConditionType>'
                f"<ConditionRateValue>{self.price}</ConditionRateValue>{per}</PricingElement>"
            )
        return (
            f'<Item actionCode="{self.action}" {ITEM_LCTI}>'
            + _el("SalesOrderItemID", self.item_id)
            + quantity
            + _el("Material", self.material)
            + pricing
            + self.partners
            + _yy1("YY1_CRMOrderItemID", self.crm_item_id)
            + _yy1("YY1_ProjectFlagItem", self.project_flag)
            + _yy1("YY1_ProjectOpportItem", self.opportunity)
            + "</Item>"
        )


@dataclass
class OrderSpec:
    """One ``SalesOrder``; ``None`` leaves an element out."""

    sold_to: str | None = "17100002"
    organization: str | None = "1710"
    channel: str | None = "10"
    division: str | None = "00"
    order_type: str | None = "OR"
    purchase_order: str | None = "PO-1"
    currency: str | None = None
    requested_delivery: str | None = None
    items: list[ItemSpec] = field(default_factory=lambda: [ItemSpec()])
    crm_order_no: str | None = None
    crm_order_id: str | None = None
    crm_quote_no: str | None = None
    project_flag: str | None = None
    opportunity: str | None = None
    action: str = "01"
    partners: str = ""

    def xml(self) -> str:
        sold_to = (
            '<Partner actionCode="01"><PartnerFunction>AG</PartnerFunction>'
            f"<Customer>{self.sold_to}</Customer></Partner>"
            if self.sold_to is not None
            else ""
        )
        return (
            f'<SalesOrder actionCode="{self.action}" {LCTI}>'
            + _el("SalesOrderType", self.order_type)
            + _el("SalesOrganization", self.organization)
            + _el("DistributionChannel", self.channel)
            + _el("OrganizationDivision", self.division)
            + _el("PurchaseOrderByCustomer", self.purchase_order)
            + _el("TransactionCurrency", self.currency)
            + _el("RequestedDeliveryDate", self.requested_delivery)
            + sold_to
            + self.partners
            + "".join(item.xml() for item in self.items)
            + _yy1("YY1_ProjectFlag", self.project_flag)
            + _yy1("YY1_ProjectOpportunity", self.opportunity)
            + _yy1("YY1_CRMQuoteNo", self.crm_quote_no)
            + _yy1("YY1_CRMOrderNo", self.crm_order_no)
            + _yy1("YY1_CRMOrderID", self.crm_order_id)
            + "</SalesOrder>"
        )


def payload(orders: list[OrderSpec], message_id: str | None = "MSG-1", sender: str = "D365") -> str:
    """The ``SalesOrderBulkRequest`` element."""
    header = _el("ID", message_id) + "<CreationDateTime>2026-05-04T10:00:00Z</CreationDateTime>"
    header += _el("SenderBusinessSystemID", sender)
    return (
        '<sls:SalesOrderBulkRequest xmlns:sls="http://sap.com/xi/SD-SLS" '
        'xmlns:yy1="http://SAPCustomFields.com/YY1_">'
        f"<MessageHeader>{header}</MessageHeader>"
        + "".join(order.xml() for order in orders)
        + "</sls:SalesOrderBulkRequest>"
    )


def envelope(body: str, version: str = "1.1", header: str = "") -> bytes:
    """``body`` in a SOAP envelope of ``version``."""
    ns = SOAP11 if version == "1.1" else SOAP12
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{ns}">'
        f"<env:Header>{header}</env:Header><env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def bulk(*orders: OrderSpec, message_id: str | None = "MSG-1", version: str = "1.1") -> bytes:
    """A whole SOAP request with ``orders`` (one default order when none are given)."""
    return envelope(payload(list(orders) or [OrderSpec()], message_id), version)


class SalesOrderClient:
    """Posts SOAP requests to the emulator and reads its admin routes and OData services."""

    def __init__(self, base_url: str, auth: tuple[str, str] | None = USER) -> None:
        self.base = base_url
        self.http = httpx2.Client(auth=auth, timeout=15.0)

    def close(self) -> None:
        self.http.close()

    def post(
        self,
        body: bytes,
        version: str = "1.1",
        *,
        content_type: str | None = None,
        auth: Any = None,
        query: str = "",
    ) -> httpx2.Response:
        headers = {"content-type": content_type or MEDIA[version]}
        if version == "1.1":
            headers["soapaction"] = '"http://sap.com/xi/SD-SLS/SalesOrderBulkRequest_In"'
        url = self.base + SOAP_PATH + query
        if auth is not None:
            return httpx2.post(url, content=body, headers=headers, auth=auth, timeout=15.0)
        return self.http.post(url, content=body, headers=headers)

    def admin(self, method: str, path: str) -> httpx2.Response:
        return httpx2.request(method, f"{self.base}/emulator/{path}", timeout=30.0)

    def wait(self, timeout: float = 15.0) -> None:
        """Until every message is processed and every confirmation settled."""
        answer = self.admin("POST", f"sales-orders/wait?timeout={timeout}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["idle"], self.messages()

    def messages(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "sales-orders/messages").json()["messages"])

    def last_message(self) -> dict[str, Any]:
        messages = self.messages()
        assert messages, "no message was received"
        return messages[-1]

    def odata(self, path: str, root: str = SO_ROOT, **params: str) -> httpx2.Response:
        return self.http.get(self.base + root + path, params=params or None)

    def orders(self, **params: str) -> list[dict[str, Any]]:
        response = self.odata("A_SalesOrder", **params)
        assert response.status_code == 200, response.text
        return list(response.json()["d"]["results"])

    def reset(self) -> None:
        assert self.admin("POST", "reset").status_code == 200


def fault_of(response: httpx2.Response, version: str = "1.1") -> dict[str, Any]:
    """Code, text and detail elements of a SOAP fault answer (asserting its shape)."""
    assert response.status_code == 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(MEDIA[version].split(";")[0])
    root = etree.fromstring(response.content)
    ns = SOAP11 if version == "1.1" else SOAP12
    fault = root.find(f"{{{ns}}}Body/{{{ns}}}Fault")
    assert fault is not None, response.text
    if version == "1.1":
        code = fault.findtext("faultcode")
        text_el = fault.find("faultstring")
        detail = fault.find("detail")
    else:
        code = fault.findtext(f"{{{ns}}}Code/{{{ns}}}Value")
        text_el = fault.find(f"{{{ns}}}Reason/{{{ns}}}Text")
        detail = fault.find(f"{{{ns}}}Detail")
    assert text_el is not None and detail is not None
    assert text_el.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    return {"code": code, "text": text_el.text or "", "detail": list(detail)}


def wait_until(check: Any, timeout: float = 10.0) -> None:
    """Poll ``check()`` until it is true (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
