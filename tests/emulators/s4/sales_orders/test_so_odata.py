"""API_SALES_ORDER_SRV and API_PRODUCT_SRV: reads of created orders, filters, read-only refusal."""

from __future__ import annotations

import httpx2
from lxml import etree

from emulators.s4.sales_orders.so_support import (
    PRODUCT_ROOT,
    SO_ROOT,
    ItemSpec,
    OrderSpec,
    SalesOrderClient,
    bulk,
)

CRM_A = "11111111-0000-4000-8000-00000000000a"
CRM_B = "11111111-0000-4000-8000-00000000000b"


def _two_orders(so: SalesOrderClient) -> None:
    body = bulk(
        OrderSpec(
            purchase_order="PO-A",
            crm_order_no="ORD-A",
            crm_order_id=CRM_A,
            project_flag="true",
            items=[
                ItemSpec(crm_item_id="line-a1"),
                ItemSpec(material="SK-20", crm_item_id="line-a2"),
            ],
        ),
        OrderSpec(
            purchase_order="PO-B",
            crm_order_no="ORD-B",
            crm_order_id=CRM_B,
            project_flag="false",
            items=[ItemSpec(crm_item_id="line-b1", project_flag="true")],
        ),
    )
    assert so.post(body).status_code == 202
    so.wait()


def test_filter_on_purchase_order_and_custom_fields(so: SalesOrderClient) -> None:
    _two_orders(so)
    by_po = so.orders(**{"$filter": "PurchaseOrderByCustomer eq 'PO-B'"})
    assert [o["YY1_CRMOrderNo_SDH"] for o in by_po] == ["ORD-B"]
    by_crm = so.orders(**{"$filter": f"YY1_CRMOrderID_SDH eq '{CRM_A}'", "$select": "SalesOrder"})
    assert [o["SalesOrder"] for o in by_crm] == ["1"]
    assert set(by_crm[0]) == {"__metadata", "SalesOrder"}
    flagged = so.orders(**{"$filter": "YY1_ProjectFlag_SDH eq true"})
    assert [o["PurchaseOrderByCustomer"] for o in flagged] == ["PO-A"]
    both = so.orders(
        **{"$filter": "startswith(YY1_CRMOrderNo_SDH,'ORD-')", "$orderby": "SalesOrder desc"}
    )
    assert [o["YY1_CRMOrderNo_SDH"] for o in both] == ["ORD-B", "ORD-A"]
    none = so.orders(**{"$filter": "PurchaseOrderByCustomer eq 'PO-C'"})
    assert none == []


def test_items_by_key_navigation_and_custom_item_fields(so: SalesOrderClient) -> None:
    _two_orders(so)
    response = so.odata("A_SalesOrder('1')/to_Item")
    assert response.status_code == 200
    items = response.json()["d"]["results"]
    assert [(i["SalesOrderItem"], i["Material"]) for i in items] == [
        ("10", "CP-100"),
        ("20", "SK-20"),
    ]
    one = so.odata("A_SalesOrderItem(SalesOrder='1',SalesOrderItem='20')").json()["d"]
    assert one["YY1_CRMOrderItemID_SDI"] == "line-a2"
    assert one["to_SalesOrder"]["__deferred"]["uri"].endswith(
        "A_SalesOrderItem(SalesOrder='1',SalesOrderItem='20')/to_SalesOrder"
    )
    parent = so.odata("A_SalesOrderItem(SalesOrder='2',SalesOrderItem='10')/to_SalesOrder")
    assert parent.json()["d"]["PurchaseOrderByCustomer"] == "PO-B"
    flagged = so.odata("A_SalesOrderItem", **{"$filter": "YY1_ProjectFlagItem_SDI eq true"})
    assert [i["YY1_CRMOrderItemID_SDI"] for i in flagged.json()["d"]["results"]] == ["line-b1"]
    by_line = so.odata("A_SalesOrderItem", **{"$filter": "YY1_CRMOrderItemID_SDI eq 'line-a1'"})
    assert [i["SalesOrder"] for i in by_line.json()["d"]["results"]] == ["1"]
    count = so.odata("A_SalesOrderItem/$count")
    assert count.text == "3"
    missing = so.odata("A_SalesOrder('42')")
    assert missing.status_code == 404
    assert missing.json()["error"]["innererror"]["application"]["service_id"] == (
        "API_SALES_ORDER_SRV"
    )


def test_the_service_is_read_only_from_outside(so: SalesOrderClient) -> None:
    _two_orders(so)
    token = so.http.get(so.base + SO_ROOT, headers={"x-csrf-token": "Fetch"}).headers[
        "x-csrf-token"
    ]
    headers = {"x-csrf-token": token}
    created = so.http.post(so.base + SO_ROOT + "A_SalesOrder", json={}, headers=headers)
    assert created.status_code == 405
    error = created.json()["error"]
    assert error["code"] == "/IWBEP/CM_MGW_RT/021"
    assert "read-only" in error["message"]["value"]
    assert error["innererror"]["application"]["service_id"] == "API_SALES_ORDER_SRV"
    patched = so.http.patch(
        so.base + SO_ROOT + "A_SalesOrder('1')",
        json={"PurchaseOrderByCustomer": "X"},
        headers=headers,
    )
    assert patched.status_code == 405
    deleted = so.http.delete(so.base + SO_ROOT + "A_SalesOrder('1')", headers=headers)
    assert deleted.status_code == 405
    assert so.odata("A_SalesOrder('1')").json()["d"]["PurchaseOrderByCustomer"] == "PO-A"
    without_token = so.http.post(so.base + SO_ROOT + "A_SalesOrder", json={})
    assert without_token.status_code == 403, "the CSRF check comes first, as on every service"


def test_metadata_and_service_document(so: SalesOrderClient) -> None:
    metadata = so.odata("$metadata")
    assert metadata.status_code == 200
    tree = etree.fromstring(metadata.content)
    names = {e.get("Name") for e in tree.iter("{*}Property")}
    assert {"YY1_CRMOrderNo_SDH", "YY1_CRMOrderItemID_SDI", "PurchaseOrderByCustomer"} <= names
    sets = so.odata("").json()["d"]["EntitySets"]
    assert "A_SalesOrder" in sets and "A_SalesOrderItem" in sets
    assert httpx2.get(so.base + SO_ROOT + "A_SalesOrder").status_code == 401


def test_products_are_readable_and_listed(so: SalesOrderClient) -> None:
    product = so.odata(
        "A_Product('CP-100')", root=PRODUCT_ROOT, **{"$expand": "to_Description,to_SalesDelivery"}
    ).json()["d"]
    assert product["BaseUnit"] == "EA"
    descriptions = {
        d["Language"]: d["ProductDescription"] for d in product["to_Description"]["results"]
    }
    assert descriptions["EN"] == "Centrifugal pump CP-100"
    areas = {
        (s["ProductSalesOrg"], s["ProductDistributionChnl"])
        for s in product["to_SalesDelivery"]["results"]
    }
    assert areas == {("1710", "10"), ("1710", "20"), ("1010", "10")}
    listed = so.admin("GET", "products").json()["products"]
    assert [p["product"] for p in listed] == ["CP-050", "CP-100", "SK-20", "SRV-COMM"]
    assert next(p for p in listed if p["product"] == "CP-050")["marked_for_deletion"] is True
    health = so.admin("GET", "health").json()
    assert "/sap/opu/odata/sap/API_SALES_ORDER_SRV/" in health["services"]
    assert health["entities"]["A_Product"] == 4
