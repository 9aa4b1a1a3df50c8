"""Canonical customer models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError as PydanticValidationError

from d365sap.model.customer import (
    CustomerGeneralData,
    CustomerSalesArea,
    SalesAreaCreateDefaults,
    SalesAreaKey,
)

KEY = SalesAreaKey(
    customer="17100001", sales_organization="1710", distribution_channel="10", division="00"
)


def test_key_label_and_str() -> None:
    assert KEY.label() == "17100001/1710/10/00"
    assert str(KEY) == "17100001/1710/10/00"
    assert f"{KEY}" == "17100001/1710/10/00"


def test_key_is_frozen_hashable_and_compares_by_value() -> None:
    same = SalesAreaKey(
        customer="17100001", sales_organization="1710", distribution_channel="10", division="00"
    )
    assert same == KEY
    assert hash(same) == hash(KEY)
    assert len({KEY, same}) == 1
    with pytest.raises(PydanticValidationError):
        KEY.customer = "1"  # type: ignore[misc]


def test_key_parts_must_not_be_empty() -> None:
    with pytest.raises(PydanticValidationError):
        SalesAreaKey(customer="", sales_organization="1", distribution_channel="1", division="1")


def test_sales_area_defaults() -> None:
    area = CustomerSalesArea(key=KEY)
    assert area.deletion_flag is None
    assert area.currency is None
    assert area.create_defaults == SalesAreaCreateDefaults()
    assert area.create_defaults.tax.tax_category is None


def test_sales_area_rejects_unknown_fields() -> None:
    with pytest.raises(PydanticValidationError):
        CustomerSalesArea(key=KEY, colour="blue")  # type: ignore[call-arg]


def test_general_data_keeps_empty_and_absent_apart() -> None:
    data = CustomerGeneralData(number="100123", name3="")
    assert data.name3 == ""
    assert data.name4 is None
    with pytest.raises(PydanticValidationError):
        CustomerGeneralData(number="")
