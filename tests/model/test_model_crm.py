"""Source models of the inbound CRM messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError as PydanticValidationError

from d365sap.model.crm import (
    ErpAccount,
    ErpAccountDetail,
    ErpAccountDetailsMessage,
    ErpAccountsMessage,
    LinkedErpOrg,
)


def test_every_leaf_defaults_to_absent() -> None:
    for model in (LinkedErpOrg, ErpAccountDetail, ErpAccount):
        instance = model()
        assert all(getattr(instance, name) is None for name in model.model_fields)


def test_field_names_follow_the_package_schemas() -> None:
    assert list(ErpAccountDetail.model_fields) == [
        "id",
        "erpaccountid",
        "accountid",
        "number",
        "deletionflag",
        "customergroup",
        "salesdistrict",
        "salesoffice",
        "salesgroup",
        "currency",
    ]
    assert len(LinkedErpOrg.model_fields) == 18
    assert len(ErpAccount.model_fields) == 25


def test_messages_are_frozen_and_strict() -> None:
    message = ErpAccountsMessage(erpaccount=ErpAccount(id="a"))
    with pytest.raises(PydanticValidationError):
        message.erpaccount = ErpAccount()  # type: ignore[misc]
    with pytest.raises(PydanticValidationError):
        ErpAccount(colour="x")  # type: ignore[call-arg]
    with pytest.raises(PydanticValidationError):
        ErpAccountDetailsMessage(linkederporg=LinkedErpOrg())  # type: ignore[call-arg]
