"""How mapping errors name fields, and the checks every target mapping shares.

A :class:`~d365sap.errors.ValidationError` always tells the caller which field of *their*
message is wrong. The naming scheme is:

* input problems name the CRM element path, e.g. ``erpaccountdetails/erpaccountdetail/number``;
* target limits name the target field first and the CRM source in brackets, e.g.
  ``E1KNA1M-NAME1 (erpaccounts/erpaccount/name1)`` or
  ``A_CustomerSalesArea.Currency (erpaccountdetails/erpaccountdetail/currency)``,
  so both the CRM team and the SAP team find their side of the problem.
"""

from __future__ import annotations

from d365sap.errors import ValidationError

DETAILS_ROOT = "erpaccountdetails"
ACCOUNTS_ROOT = "erpaccounts"


def org_path(name: str) -> str:
    """Path of a ``linkederporg`` child element."""
    return f"{DETAILS_ROOT}/linkederporg/{name}"


def detail_path(name: str) -> str:
    """Path of an ``erpaccountdetail`` child element."""
    return f"{DETAILS_ROOT}/erpaccountdetail/{name}"


def account_path(name: str) -> str:
    """Path of an ``erpaccounts/erpaccount`` child element."""
    return f"{ACCOUNTS_ROOT}/erpaccount/{name}"


def target_field(target: str, source: str) -> str:
    """The error field name for a target field filled from CRM element ``source``."""
    return f"{target} ({source})"


def check_max_length(value: str, limit: int | None, *, target: str, source: str) -> None:
    """Reject ``value`` when it exceeds the target's ``limit`` (in characters).

    The package never truncates, so an over-long value used to fail (or be cut) inside SAP;
    rejecting it here gives the caller a precise 400 instead.
    """
    if limit is not None and len(value) > limit:
        raise ValidationError(
            target_field(target, source),
            f"{len(value)} characters, at most {limit} allowed",
        )


def required_key(value: str | None, field: str) -> str:
    """A key value stripped of surrounding whitespace; absent or blank is rejected (D9, G2)."""
    if value is None:
        raise ValidationError(field, "element missing, a non-blank key value is required")
    stripped = value.strip()
    if not stripped:
        raise ValidationError(field, "blank, a non-blank key value is required")
    return stripped


def pad_customer_number(number: str, width: int) -> str:
    """Left-pad a purely numeric customer number with zeros to ``width`` (SAP ALPHA, D9).

    Alphanumeric numbers are left alone, as SAP's ALPHA conversion does; ``width`` 0 disables
    padding.
    """
    if width > 0 and number.isascii() and number.isdigit():
        return number.zfill(width)
    return number
