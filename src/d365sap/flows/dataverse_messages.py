"""The message the Dataverse triggers hand to the native customer flow.

The webhook endpoint, the delta poller and ``d365sap load customers`` all learn the same thing:
"this Dataverse row changed". They do not read the rows or decide anything; they submit one
:class:`DataverseChange` per changed row to the flow named :data:`FLOW_NAME`, and the flow
assembles the account's data from Dataverse when it runs. Keeping the message this small means a
retried or late message always works on the rows as they are now, never on a stale copy.

Payload: the JSON bytes of :class:`DataverseChange` (:func:`encode_change`), content type
:data:`CONTENT_TYPE`. The engine's queue for these messages is :data:`QUEUE`.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from d365sap.engine.types import Description
from d365sap.errors import D365SapError
from d365sap.errors import ValidationError as D365ValidationError

FLOW_NAME = "dataverse_customer"
CONTENT_TYPE = "application/json"
QUEUE = "dataverse"


class ChangeTable(StrEnum):
    """The Dataverse tables whose changes the flow handles."""

    ACCOUNT = "account"
    ERP_ACCOUNT = "sap_erpaccount"
    ERP_ACCOUNT_DETAIL = "sap_erpaccountdetail"


class ChangeKind(StrEnum):
    """What happened to the row (``Load`` for an initial or operator-requested load)."""

    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"
    LOAD = "Load"


class ChangeSource(StrEnum):
    """Which trigger saw the change."""

    WEBHOOK = "webhook"
    DELTA = "delta"
    LOAD = "load"


class DataverseChange(BaseModel):
    """One changed Dataverse row, as a trigger reports it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: ChangeTable
    id: UUID = Field(description="guid of the changed row in `table`")
    account_id: UUID | None = Field(
        default=None, description="the account the row belongs to, when the trigger knows it"
    )
    change: ChangeKind
    source: ChangeSource
    version: int | None = Field(
        default=None, ge=0, description="row version (the number in the ETag), when known"
    )
    dry_run: bool = False

    def business_key(self) -> str:
        """The account id when known, else ``<table>:<id>``: orders one account's messages."""
        if self.account_id is not None:
            return str(self.account_id)
        if self.table is ChangeTable.ACCOUNT:
            return str(self.id)
        return f"{self.table.value}:{self.id}"


def encode_change(change: DataverseChange) -> bytes:
    """The payload to submit for ``change``."""
    return change.model_dump_json().encode("utf-8")


def decode_change(payload: bytes) -> DataverseChange:
    """Parse a payload; a bad one raises :class:`d365sap.errors.ValidationError` naming fields."""
    try:
        return DataverseChange.model_validate_json(payload)
    except ValidationError as exc:
        errors = exc.errors()
        fields = [".".join(str(part) for part in error["loc"]) or "payload" for error in errors]
        problems = "; ".join(
            f"{field}: {error['msg']}" for field, error in zip(fields, errors, strict=True)
        )
        raise D365ValidationError(
            fields[0] if fields else "payload", f"invalid Dataverse change message ({problems})"
        ) from exc


def describe_change(payload: bytes) -> Description:
    """The engine's description: business key and queue; no route (decided when it runs), no I/O.

    An unreadable payload gets no business key (it fails when it runs, naming the field).
    """
    try:
        change = decode_change(payload)
    except D365SapError:
        return Description(queue=QUEUE)
    return Description(business_key=change.business_key(), queue=QUEUE)
