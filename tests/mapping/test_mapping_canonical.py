"""CRM messages → canonical customer models."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from d365sap.errors import ValidationError
from d365sap.mapping.canonical import (
    general_data_from_accounts,
    sales_area_from_details,
    sales_area_key_from_details,
)
from d365sap.mapping.crm_xml import (
    ErpAccountDetailsMessage,
    ErpAccountsMessage,
    parse_customer_message,
)

Edit = Callable[[bytes, Mapping[str, str | None]], bytes]


def _details(body: bytes) -> ErpAccountDetailsMessage:
    message = parse_customer_message(body)
    assert isinstance(message, ErpAccountDetailsMessage)
    return message


def test_sales_area_from_example_a(s4_xml: bytes) -> None:
    area = sales_area_from_details(_details(s4_xml))
    assert area.key.label() == "17100001/1710/10/00"
    assert area.currency == "USD"
    assert area.customer_group == "01"
    assert area.sales_group == "170"
    assert area.sales_office == "1710"
    assert area.sales_district == "US0003"
    assert area.deletion_flag is False
    assert area.create_defaults.incoterms_classification == "EXW"
    assert area.create_defaults.order_block == ""
    assert area.create_defaults.tax.departure_country == "US"
    assert area.create_defaults.tax.tax_category == "UTXJ"
    assert area.create_defaults.tax.tax_classification == "1"
    assert area.erp_system_type == "S4HC"
    assert area.crm_record_id == "a8e4f0c2-3d51-4b7e-9c16-2e7f5a1b8d30"
    assert area.crm_erp_account_id == "c1b9d2e4-6f7a-4e3b-8d2c-9a0b1c2d3e4f"
    assert area.crm_account_id == "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"
    assert area.crm_linked_org_id == "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a11"
    assert area.crm_linked_org_name == "S/4HANA Cloud 1710 / 10 / 00"


def test_ecc_message_has_no_create_defaults(ecc_xml: bytes) -> None:
    area = sales_area_from_details(_details(ecc_xml))
    assert area.create_defaults.payment_terms is None
    assert area.create_defaults.tax.departure_country is None


def test_key_padding(s4_xml: bytes) -> None:
    key = sales_area_key_from_details(_details(s4_xml), customer_number_padding=10)
    assert key.customer == "0017100001"


def test_general_data_from_example_c(accounts_xml: bytes) -> None:
    message = parse_customer_message(accounts_xml)
    assert isinstance(message, ErpAccountsMessage)
    data = general_data_from_accounts(message)
    assert data.number == "100123"
    assert data.name1 == "Muster Pumpentechnik GmbH"
    assert data.search_name == "MUSTERPUMP"
    assert data.street == "Industriestrasse 12"
    assert data.street2 == ""
    assert data.postal_code == "44263"
    assert data.city == "Dortmund"
    assert data.region == "05"
    assert data.region_name == "Nordrhein-Westfalen"
    assert data.country == "DE"
    assert data.phone == "+49 231 4102-0"
    assert data.fax == ""
    assert data.email == "info@muster-pumpen.example"
    assert data.website == "https://www.muster-pumpen.example"
    assert data.language_iso2 == "DE"
    assert data.language_iso3 == "DEU"
    assert data.customer_group == "02"
    assert data.owner == "j.schmidt@contoso.example"
    assert data.crm_record_id == "4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4"
    assert data.crm_account_id == "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"


def test_general_data_requires_number(accounts_xml: bytes, edit: Edit) -> None:
    message = parse_customer_message(edit(accounts_xml, {"erpaccount/number": ""}))
    assert isinstance(message, ErpAccountsMessage)
    with pytest.raises(ValidationError) as caught:
        general_data_from_accounts(message)
    assert caught.value.field == "erpaccounts/erpaccount/number"
