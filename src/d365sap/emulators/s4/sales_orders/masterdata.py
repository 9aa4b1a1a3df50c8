"""What the order processing reads from the rest of the emulated S/4: customers and products.

Customers and their sales areas are the records of API_BUSINESS_PARTNER, products those of
API_PRODUCT_SRV, so a customer created through OData can order at once and a seed file defines
both. Numbers are compared as SAP's ALPHA conversion stores them: a purely numeric customer
number ``0017100002`` is customer ``17100002``.

SOAP quantities carry ISO unit codes (``unitCode="PCE"``), S/4 keeps its own unit codes
(``PC``); :data:`ISO_TO_SAP_UNIT` is the part of S/4's unit table the emulator knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from d365sap.emulators.s4.store import Record, Store

ISO_TO_SAP_UNIT: Mapping[str, str] = {
    "EA": "EA",
    "PCE": "PC",
    "H87": "PC",
    "C62": "PC",
    "HUR": "H",
    "MIN": "MIN",
    "DAY": "DAY",
    "KGM": "KG",
    "GRM": "G",
    "TNE": "TO",
    "MTR": "M",
    "LTR": "L",
    "MTK": "M2",
    "MTQ": "M3",
    "SET": "SET",
    "PK": "PAK",
}
SAP_TO_ISO_UNIT: Mapping[str, str] = {
    "EA": "EA",
    "PC": "PCE",
    "H": "HUR",
    "MIN": "MIN",
    "DAY": "DAY",
    "KG": "KGM",
    "G": "GRM",
    "TO": "TNE",
    "M": "MTR",
    "L": "LTR",
    "M2": "MTK",
    "M3": "MTQ",
    "SET": "SET",
    "PAK": "PK",
}


def alpha(number: str) -> str:
    """SAP's ALPHA conversion on input as stored: leading zeros of a numeric id dropped."""
    text = number.strip()
    if text.isdigit():
        return text.lstrip("0") or "0"
    return text.upper()


class MasterData:
    """Read-only lookups in the business partner and product stores."""

    def __init__(self, partners: Store, products: Store) -> None:
        self._partners = partners
        self._products = products

    def customer(self, number: str) -> Record | None:
        """The ``A_Customer`` record of ``number``, or None."""
        return self._partners.get("A_Customer", (alpha(number),))

    def sales_area(
        self, customer: str, organization: str, channel: str, division: str
    ) -> Record | None:
        """The customer's ``A_CustomerSalesArea`` for the sales area, or None."""
        key = (alpha(customer), organization, channel, division)
        return self._partners.get("A_CustomerSalesArea", key)

    def product(self, product: str) -> Record | None:
        """The ``A_Product`` record, or None."""
        return self._products.get("A_Product", (product.strip().upper(),))

    def product_sales(self, product: str, organization: str, channel: str) -> Record | None:
        """The product's sales data (``A_ProductSalesDelivery``) for the sales org and channel."""
        key = (product.strip().upper(), organization, channel)
        return self._products.get("A_ProductSalesDelivery", key)

    def description(self, product: str, language: str = "EN") -> str | None:
        """The product's description in ``language``, or None."""
        record = self._products.get("A_ProductDescription", (product.strip().upper(), language))
        return _text(record.values.get("ProductDescription")) if record else None

    def products(self) -> list[dict[str, Any]]:
        """Every product with its descriptions and sales areas (``/emulator/products``)."""
        result: list[dict[str, Any]] = []
        descriptions = self._products.rows("A_ProductDescription")
        sales = self._products.rows("A_ProductSalesDelivery")
        for record in self._products.rows("A_Product"):
            number = record.values["Product"]
            result.append(
                {
                    "product": number,
                    "type": record.values.get("ProductType"),
                    "base_unit": record.values.get("BaseUnit"),
                    "marked_for_deletion": bool(record.values.get("IsMarkedForDeletion")),
                    "descriptions": {
                        d.values["Language"]: d.values.get("ProductDescription")
                        for d in descriptions
                        if d.values["Product"] == number
                    },
                    "sales_areas": [
                        {
                            "sales_organization": s.values["ProductSalesOrg"],
                            "distribution_channel": s.values["ProductDistributionChnl"],
                            "sales_unit": s.values.get("SalesMeasureUnit"),
                            "marked_for_deletion": bool(s.values.get("IsMarkedForDeletion")),
                        }
                        for s in sales
                        if s.values["Product"] == number
                    ],
                }
            )
        return result


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
