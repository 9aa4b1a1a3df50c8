"""CRM messages → DEBMAS07 IDoc XML for SAP ERP (§2.6 ``CRM_To_ECC``, §2.7 ``mmCustomerCRMtoECC``).

The output matches the package's golden IDocs field for field: segments and fields in the order
of the packaged ``ERP_ZZ_DEBMAS.xsd``, ``BEGIN="1"``/``SEGMENT="1"``, every unmapped field of
E1KNA1M/E1KNVVM sent as ``/`` (the ALE "no data" sign, so ECC keeps what it has), an empty phone
or fax sent as ``/`` rather than clearing the number, absent CRM elements left out. Deliberate
differences:

* D11: control record values and the XML root element come from :class:`IdocControlSettings`;
* D12: ``MSGFN`` of E1KNA1M and E1KNVVM comes from ``control.msgfn`` (package: ``/``);
* D2: E1KNVVM-LOEVM is ``X`` / empty by the shared deletion-flag rule, omitted when absent
  (the package marked a sales area for deletion on an empty flag);
* G2/D9: KUNNR (and the sales-area key) must be non-blank and is stripped;
* every filled field is checked against its XSD maximum length, because ECC would otherwise
  truncate or reject it long after the CRM got its answer.
"""

from __future__ import annotations

from d365sap.config import IdocControlSettings
from d365sap.mapping.canonical import general_data_from_accounts, sales_area_from_details
from d365sap.mapping.fields import account_path, detail_path, org_path, required_key
from d365sap.mapping.idoc_builder import NO_DATA, add_segment, idoc_document, serialize_idoc
from d365sap.mapping.idoc_builder import IdocValue as _Value
from d365sap.model.crm import ErpAccountDetailsMessage, ErpAccountsMessage

__all__ = [
    "DELETION_MARK",
    "NO_DATA",
    "idoc_customer_number",
    "idoc_for_message",
    "idoc_from_erp_account_details",
    "idoc_from_erp_accounts",
]

DELETION_MARK = "X"


def idoc_customer_number(message: ErpAccountDetailsMessage | ErpAccountsMessage) -> str:
    """KUNNR of the IDoc the message produces: the CRM number, stripped, non-blank (G2)."""
    if isinstance(message, ErpAccountsMessage):
        return required_key(message.erpaccount.number, account_path("number"))
    return required_key(message.erpaccountdetail.number, detail_path("number"))


def idoc_for_message(
    message: ErpAccountDetailsMessage | ErpAccountsMessage, control: IdocControlSettings
) -> bytes:
    """The IDoc for either message type (accounts: §2.6, account details: §2.7)."""
    if isinstance(message, ErpAccountsMessage):
        return idoc_from_erp_accounts(message, control)
    return idoc_from_erp_account_details(message, control)


def idoc_from_erp_accounts(message: ErpAccountsMessage, control: IdocControlSettings) -> bytes:
    """General data → EDI_DC40 + E1KNA1M (+ Z1ZAKNA1 with the CRM erpaccount id)."""
    data = general_data_from_accounts(message)
    general = {
        "KUNNR": _Value(data.number, account_path("number")),
        "LAND1": _Value(data.country, account_path("addr1ctry")),
        "NAME1": _Value(data.name1, account_path("name1")),
        "NAME2": _Value(data.name2, account_path("name2")),
        "NAME3": _Value(data.name3, account_path("name3")),
        "NAME4": _Value(data.name4, account_path("name4")),
        "ORT01": _Value(data.city, account_path("addr1city")),
        "PSTLZ": _Value(data.postal_code, account_path("addr1zip")),
        "REGIO": _Value(data.region, account_path("addr1spcode")),
        "SORTL": _Value(data.search_name, account_path("searchname")),
        "STRAS": _Value(data.street, account_path("addr1line1")),
        "TELF1": _Value(_no_data_if_empty(data.phone), account_path("phone1")),
        "TELFX": _Value(_no_data_if_empty(data.fax), account_path("fax")),
        "SPRAS_ISO": _Value(data.language_iso2, account_path("langiso2")),
    }
    root, idoc = idoc_document(control)
    e1kna1m = add_segment(idoc, "E1KNA1M", general, msgfn=control.msgfn, default=NO_DATA)
    add_segment(
        e1kna1m,
        "Z1ZAKNA1",
        {"ZZ_ID": _Value(data.crm_record_id, account_path("id"))},
        default=None,
    )
    return serialize_idoc(root)


def idoc_from_erp_account_details(
    message: ErpAccountDetailsMessage, control: IdocControlSettings
) -> bytes:
    """Sales data → EDI_DC40 + E1KNA1M (KUNNR only) + Z1ZAKNA1 + E1KNVVM."""
    area = sales_area_from_details(message)
    loevm = None if area.deletion_flag is None else (DELETION_MARK if area.deletion_flag else "")
    root, idoc = idoc_document(control)
    e1kna1m = add_segment(
        idoc,
        "E1KNA1M",
        {"KUNNR": _Value(area.key.customer, detail_path("number"))},
        msgfn=control.msgfn,
        default=NO_DATA,
    )
    add_segment(
        e1kna1m,
        "Z1ZAKNA1",
        {"ZZ_ID": _Value(area.crm_record_id, detail_path("id"))},
        default=None,
    )
    sales = {
        "VKORG": _Value(area.key.sales_organization, org_path("sap_vkorg")),
        "VTWEG": _Value(area.key.distribution_channel, org_path("sap_vtweg")),
        "SPART": _Value(area.key.division, org_path("sap_spart")),
        "LOEVM": _Value(loevm, detail_path("deletionflag")),
        "KDGRP": _Value(area.customer_group, detail_path("customergroup")),
        "BZIRK": _Value(area.sales_district, detail_path("salesdistrict")),
        "VKGRP": _Value(area.sales_group, detail_path("salesgroup")),
        "VKBUR": _Value(area.sales_office, detail_path("salesoffice")),
    }
    add_segment(e1kna1m, "E1KNVVM", sales, msgfn=control.msgfn, default=NO_DATA)
    return serialize_idoc(root)


def _no_data_if_empty(value: str | None) -> str | None:
    """Package rule for TELF1/TELFX: an empty CRM value keeps the ECC value (``/``)."""
    return NO_DATA if value == "" else value
