"""A Dataverse webhook's ``RemoteExecutionContext`` to the flow's :class:`DataverseChange`.

Dataverse posts the execution context of the step a webhook is registered on, written by .NET's
DataContractJsonSerializer: attribute collections as lists of ``{"key", "value"}`` pairs, lookups
as ``EntityReference`` objects (``{"Id", "LogicalName", …}``), the changed row as the ``Target``
input parameter (an entity for Create and Update, a reference for Delete), registered images as
``PreEntityImages`` / ``PostEntityImages``. The trigger needs only a few facts from it: which row
of which table, what happened, and the account the row belongs to, so that the engine orders the
account's messages. Everything else the flow reads from Dataverse itself when it runs.

Every problem raises :class:`~d365sap.errors.ValidationError` naming the member of the context
(``PrimaryEntityId``, ``InputParameters.Target.LogicalName``,
``PostEntityImages[0].sap_accountid``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from d365sap.errors import ValidationError
from d365sap.flows.dataverse_messages import (
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
)

ACCOUNT_LOOKUP = "sap_accountid"
"""The lookup from an ERP account or ERP account detail to its account."""

MESSAGE_KINDS: dict[str, ChangeKind] = {
    "Create": ChangeKind.CREATE,
    "Update": ChangeKind.UPDATE,
    "Delete": ChangeKind.DELETE,
    # Messages that change a row without being called Update.
    "Assign": ChangeKind.UPDATE,
    "SetState": ChangeKind.UPDATE,
    "SetStateDynamicEntity": ChangeKind.UPDATE,
}

WRITE_BACK_COLUMNS = frozenset(
    {
        "sap_sapcustomernumber",
        "sap_syncstatus",
        "sap_lastsyncon",
        "sap_lasterror",
        "sap_lastmessageid",
    }
)
"""Columns d365sap itself writes back into Dataverse."""

STAMP_COLUMNS = frozenset({"modifiedon", "modifiedby", "modifiedonbehalfby", "versionnumber"})
"""Columns the platform sets on every update."""


@dataclass(frozen=True)
class WebhookChange:
    """What one context says: the change for the flow, and ids to trace and deduplicate it."""

    change: DataverseChange
    request_id: str
    correlation_id: str | None
    write_back_only: bool
    """An Update that set nothing but the write-back columns (d365sap's own echo)."""


def _guid(value: object, field: str) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValidationError(field, f"expected a GUID, got {value!r}"[:200])


def _text(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, f"a non-empty string is required, got {value!r}"[:200])
    return value.strip()


def _pairs(value: object, field: str) -> list[tuple[str, Any]]:
    """A DataContract key/value list (``[{"key": …, "value": …}]``) as pairs."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(field, "expected a list of {key, value} pairs")
    pairs: list[tuple[str, Any]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValidationError(f"{field}[{index}]", "expected an object with a string key")
        pairs.append((item["key"], item.get("value")))
    return pairs


@dataclass(frozen=True)
class _Entity:
    """An ``Entity`` (or ``EntityReference``) of the context, with where it was found."""

    where: str
    logical_name: object
    row_id: object
    attributes: dict[str, Any]


def _entity(value: object, where: str) -> _Entity:
    if not isinstance(value, dict):
        raise ValidationError(where, "expected an Entity or EntityReference object")
    attributes = dict(_pairs(value.get("Attributes"), f"{where}.Attributes"))
    return _Entity(where, value.get("LogicalName"), value.get("Id"), attributes)


def _images(document: Mapping[str, Any], name: str) -> list[_Entity]:
    return [
        _entity(image, f"{name}[{index}]")
        for index, (_, image) in enumerate(_pairs(document.get(name), name))
    ]


def _lookup_id(entity: _Entity, column: str) -> uuid.UUID | None:
    """The id a lookup column of ``entity`` points at: an EntityReference or a bare GUID."""
    if column not in entity.attributes:
        return None
    value = entity.attributes[column]
    field = f"{entity.where}.{column}"
    if value is None:
        return None
    if isinstance(value, dict):
        return _guid(value.get("Id"), f"{field}.Id")
    return _guid(value, field)


def _version(entities: Sequence[_Entity]) -> int | None:
    """The row version from an image that carries ``versionnumber``, when one does."""
    for entity in entities:
        value = entity.attributes.get("versionnumber")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _target(document: Mapping[str, Any]) -> _Entity | None:
    for key, value in _pairs(document.get("InputParameters"), "InputParameters"):
        if key == "Target":
            return _entity(value, "InputParameters.Target")
    return None


def change_from_context(document: object, *, request_id: str | None = None) -> WebhookChange:
    """The change a ``RemoteExecutionContext`` reports.

    ``request_id`` is the ``x-request-id`` header; it must agree with the body's ``RequestId``
    when both are given. The account id is the row's own for an account, otherwise the
    ``sap_accountid`` lookup of the Target or an image, when one of them carries it.
    """
    if not isinstance(document, dict):
        raise ValidationError("body", "expected a RemoteExecutionContext JSON object")
    message = _text(document, "MessageName")
    kind = MESSAGE_KINDS.get(message)
    if kind is None:
        known = ", ".join(MESSAGE_KINDS)
        raise ValidationError("MessageName", f"{message!r} is not handled; one of {known}")
    table_name = _text(document, "PrimaryEntityName")
    try:
        table = ChangeTable(table_name)
    except ValueError:
        known = ", ".join(t.value for t in ChangeTable)
        raise ValidationError(
            "PrimaryEntityName", f"table {table_name!r} is not handled; one of {known}"
        ) from None
    row_id = _guid(document.get("PrimaryEntityId"), "PrimaryEntityId")
    body_request = document.get("RequestId")
    if body_request is None and request_id is None:
        raise ValidationError("RequestId", "the context has no RequestId (nor x-request-id)")
    if body_request is not None:
        body_request_id = _guid(body_request, "RequestId")
        if request_id is not None and _guid(request_id, "x-request-id") != body_request_id:
            raise ValidationError("x-request-id", "differs from the context's RequestId")
        request = str(body_request_id)
    else:
        request = str(_guid(request_id, "x-request-id"))
    correlation = document.get("CorrelationId")

    target = _target(document)
    if target is not None:
        if target.logical_name not in (None, table.value):
            raise ValidationError(
                "InputParameters.Target.LogicalName",
                f"{target.logical_name!r} differs from PrimaryEntityName {table.value!r}",
            )
        if target.row_id is not None and _guid(target.row_id, "InputParameters.Target.Id") != (
            row_id
        ):
            raise ValidationError(
                "InputParameters.Target.Id", "differs from PrimaryEntityId " + str(row_id)
            )
    post = _images(document, "PostEntityImages")
    pre = _images(document, "PreEntityImages")
    sources = [entity for entity in (target, *post, *pre) if entity is not None]
    account_id: uuid.UUID | None = row_id if table is ChangeTable.ACCOUNT else None
    if account_id is None:
        for entity in sources:
            account_id = _lookup_id(entity, ACCOUNT_LOOKUP)
            if account_id is not None:
                break
    set_columns = set(target.attributes) if target is not None else set()
    primary_key = f"{table.value}id"
    write_back_only = (
        kind is ChangeKind.UPDATE
        and message == "Update"
        and bool(set_columns & WRITE_BACK_COLUMNS)
        and set_columns <= WRITE_BACK_COLUMNS | STAMP_COLUMNS | {primary_key}
    )
    change = DataverseChange(
        table=table,
        id=row_id,
        account_id=account_id,
        change=kind,
        source=ChangeSource.WEBHOOK,
        version=_version(post) if kind is not ChangeKind.DELETE else _version(pre),
    )
    return WebhookChange(
        change=change,
        request_id=request,
        correlation_id=str(correlation) if isinstance(correlation, str) and correlation else None,
        write_back_only=write_back_only,
    )
