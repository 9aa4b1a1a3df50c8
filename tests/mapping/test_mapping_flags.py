"""The shared deletion-flag rule (D2)."""

from __future__ import annotations

import pytest

from d365sap.errors import ValidationError
from d365sap.mapping.flags import parse_deletion_flag

FIELD = "erpaccountdetails/erpaccountdetail/deletionflag"


@pytest.mark.parametrize("value", ["1", "true", "True", "TRUE", " 1 ", "\ntrue\n"])
def test_true_values(value: str) -> None:
    assert parse_deletion_flag(value, FIELD) is True


@pytest.mark.parametrize("value", ["0", "false", "False", "", "   ", " 0"])
def test_false_values(value: str) -> None:
    assert parse_deletion_flag(value, FIELD) is False


def test_absent_is_none() -> None:
    assert parse_deletion_flag(None, FIELD) is None


@pytest.mark.parametrize("value", ["N", "Y", "X", "yes", "no", "2", "01", "-1", "t"])
def test_anything_else_is_rejected_naming_the_field(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_deletion_flag(value, FIELD)
    assert caught.value.field == FIELD
    assert repr(value) in caught.value.reason
    assert caught.value.status == 400
