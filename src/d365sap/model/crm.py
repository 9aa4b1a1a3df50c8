"""The two inbound Dynamics messages, exactly as they arrive (SEED-SPEC §3.1, §3.2).

These models mirror the XML the CRM sends, one field per element, in schema order. They are the
union of the package's three ``erpaccountdetails`` schemas plus ``erpaccounts``. Every leaf is
``str | None`` because the package's mappings distinguish an *absent* element (``None``: the
target field is not produced) from an *empty* one (``""``: the target field is produced empty),
see §2.0. Values are never converted to numbers although the schemas declare numeric types (A2):
customer numbers, sales offices and postcodes are SAP character fields.

The field names double as the allowed child element names for the strict parser in
:mod:`d365sap.mapping.crm_xml`, so they must keep the XML spelling.
"""

from __future__ import annotations

from typing import TypeAlias

from pydantic import BaseModel, ConfigDict


class _CrmRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LinkedErpOrg(_CrmRecord):
    """``erpaccountdetails/linkederporg``: the ERP sales area the CRM account is linked to."""

    id: str | None = None
    name: str | None = None
    erpsystemtype: str | None = None
    sap_vkorg: str | None = None
    sap_vtweg: str | None = None
    sap_spart: str | None = None
    sap_create_accountassignmentgroup: str | None = None
    sap_create_orderblock: str | None = None
    sap_create_shippingcondition: str | None = None
    sap_create_incoterms: str | None = None
    sap_create_incotermslocation1: str | None = None
    sap_create_incotermslocation2: str | None = None
    sap_create_paymentterms: str | None = None
    sap_create_taxdeterminationcode: str | None = None
    sap_create_taxdeparturecountry: str | None = None
    sap_create_taxcategory: str | None = None
    sap_create_exchangeratetype: str | None = None
    sap_create_pricegroup: str | None = None


class ErpAccountDetail(_CrmRecord):
    """``erpaccountdetails/erpaccountdetail``: the sales data of one CRM account."""

    id: str | None = None
    erpaccountid: str | None = None
    accountid: str | None = None
    number: str | None = None
    deletionflag: str | None = None
    customergroup: str | None = None
    salesdistrict: str | None = None
    salesoffice: str | None = None
    salesgroup: str | None = None
    currency: str | None = None


class ErpAccountDetailsMessage(_CrmRecord):
    """Root ``erpaccountdetails``: sales-area data for S/4HANA Cloud or SAP ERP."""

    linkederporg: LinkedErpOrg
    erpaccountdetail: ErpAccountDetail


class ErpAccount(_CrmRecord):
    """``erpaccounts/erpaccount``: general (central) data of a CRM account."""

    id: str | None = None
    accountid: str | None = None
    number: str | None = None
    name1: str | None = None
    name2: str | None = None
    name3: str | None = None
    name4: str | None = None
    searchname: str | None = None
    addr1line1: str | None = None
    addr1line2: str | None = None
    addr1line3: str | None = None
    addr1pobox: str | None = None
    addr1zip: str | None = None
    addr1city: str | None = None
    addr1spcode: str | None = None
    addr1spname: str | None = None
    addr1ctry: str | None = None
    phone1: str | None = None
    email1: str | None = None
    fax: str | None = None
    website: str | None = None
    langiso2: str | None = None
    langiso3: str | None = None
    custgroup: str | None = None
    owner: str | None = None


class ErpAccountsMessage(_CrmRecord):
    """Root ``erpaccounts``: general data, always bound for SAP ERP (G3)."""

    erpaccount: ErpAccount


CustomerMessage: TypeAlias = ErpAccountDetailsMessage | ErpAccountsMessage
"""Either inbound customer message."""
