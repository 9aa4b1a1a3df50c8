"""Dataverse ``RemoteExecutionContext`` documents for webhook tests, as Dataverse posts them."""

from __future__ import annotations

import uuid
from typing import Any

ENTITY_TYPE = "Entity:http://schemas.microsoft.com/xrm/2011/Contracts"
REFERENCE_TYPE = "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts"


def reference(table: str, row_id: str) -> dict[str, Any]:
    """An ``EntityReference`` value."""
    return {
        "__type": REFERENCE_TYPE,
        "Id": row_id,
        "KeyAttributes": [],
        "LogicalName": table,
        "Name": None,
        "RowVersion": None,
    }


def entity(table: str, row_id: str, attributes: dict[str, Any], *, typed: bool) -> dict[str, Any]:
    """An ``Entity`` with its attributes as key/value pairs."""
    body: dict[str, Any] = {"__type": ENTITY_TYPE} if typed else {}
    body.update(
        {
            "Attributes": [{"key": k, "value": v} for k, v in attributes.items()],
            "EntityState": None,
            "FormattedValues": [],
            "Id": row_id,
            "KeyAttributes": [],
            "LogicalName": table,
            "RelatedEntities": [],
            "RowVersion": None,
        }
    )
    return body


def context(
    table: str,
    row_id: str,
    message: str = "Update",
    *,
    target: dict[str, Any] | None = None,
    post_image: dict[str, Any] | None = None,
    pre_image: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """An asynchronous post-operation context of ``message`` on one row."""
    if message == "Delete":
        target_value: dict[str, Any] = reference(table, row_id)
    else:
        attributes = {f"{table}id": row_id, **(target or {})}
        target_value = entity(table, row_id, attributes, typed=True)
    images_post = (
        [{"key": "post", "value": entity(table, row_id, post_image, typed=False)}]
        if post_image is not None
        else []
    )
    images_pre = (
        [{"key": "pre", "value": entity(table, row_id, pre_image, typed=False)}]
        if pre_image is not None
        else []
    )
    return {
        "BusinessUnitId": str(uuid.uuid4()),
        "CorrelationId": str(uuid.uuid4()),
        "Depth": 1,
        "InitiatingUserId": str(uuid.uuid4()),
        "InputParameters": [{"key": "Target", "value": target_value}],
        "MessageName": message,
        "Mode": 1,
        "OperationId": str(uuid.uuid4()),
        "OrganizationId": str(uuid.uuid4()),
        "OrganizationName": "test",
        "OutputParameters": [{"key": "id", "value": row_id}] if message == "Create" else [],
        "PostEntityImages": images_post,
        "PreEntityImages": images_pre,
        "PrimaryEntityId": row_id,
        "PrimaryEntityName": table,
        "RequestId": request_id or str(uuid.uuid4()),
        "Stage": 40,
        "UserId": str(uuid.uuid4()),
    }
