"""The ``RemoteExecutionContext`` a webhook receives, built from one committed row change.

Dataverse posts the execution context of the plug-in step the webhook is registered on, written
by .NET's DataContractJsonSerializer: members in alphabetical order, dates as ``\\/Date(ms)\\/``,
every ``/`` escaped, collections as lists of ``{"key", "value"}`` pairs, and a ``__type`` hint
wherever the declared type is ``object`` (the ``Target`` entity, entity references, option set
values, money). Receivers written for Dataverse (Azure Functions, Logic Apps, .NET services that
deserialise ``RemoteExecutionContext``) depend on exactly that, so this module reproduces it from
the documented sample (an asynchronous post-operation Update of a contact).

The emulator's rows are plain mappings (lookups as ``_<name>_value``), so the types that need a
``__type`` hint come from a :class:`ContextSchema`: the emulator's table definitions through
:class:`TableSchema`, or :class:`NamingSchema` when only names are known.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from d365sap.emulators.dataverse.columns import CHOICE_KINDS, LOOKUP_KINDS, Kind
from d365sap.emulators.dataverse.events import RowChange
from d365sap.emulators.dataverse.schema import Schema

XRM_CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
ENTITY_TYPE = f"Entity:{XRM_CONTRACTS}"
ENTITY_REFERENCE_TYPE = f"EntityReference:{XRM_CONTRACTS}"
OPTION_SET_TYPE = f"OptionSetValue:{XRM_CONTRACTS}"
MONEY_TYPE = f"Money:{XRM_CONTRACTS}"
STRING_PAIR_TYPE = "KeyValuePairOfstringstring:#System.Collections.Generic"
MAX_PAYLOAD_BYTES = 256 * 1024  # beyond this Dataverse strips the context (msg-size-exceeded)
STRIPPED_WHEN_TOO_LARGE = (
    "ParentContext",
    "InputParameters",
    "PreEntityImages",
    "PostEntityImages",
)
PRIMARY_NAME_IMAGE = "AsynchronousStepPrimaryName"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"  # beside a lookup in a stored row
STAGE_POST_OPERATION = 40
STAGE_MAIN_OPERATION = 30
MODE_ASYNCHRONOUS = 1
_NOT_IN_TARGET = frozenset({"versionnumber"})
_STAMPED_ON_UPDATE = ("modifiedon", "modifiedby", "modifiedonbehalfby")


class ValueKind(StrEnum):
    """How a column's value is written in the context."""

    PLAIN = "plain"
    LOOKUP = "lookup"
    CHOICE = "choice"
    MONEY = "money"
    DATETIME = "datetime"


class ContextSchema(Protocol):
    """What the context needs to know about tables beyond the row itself."""

    def primary_id(self, table: str) -> str:
        """The primary key column (``contactid``)."""
        ...

    def primary_name(self, table: str) -> str | None:
        """The primary name column (``fullname``), if known."""
        ...

    def value_kind(self, table: str, attribute: str) -> ValueKind:
        """How ``attribute`` (logical name, ``parentcustomerid`` not ``_..._value``) is written."""
        ...

    def lookup_target(self, table: str, attribute: str, row: Mapping[str, object]) -> str | None:
        """The logical name of the table the lookup ``attribute`` of ``row`` points at."""
        ...


class NamingSchema:
    """A schema from names only: ``<table>id`` keys, ``_<name>_value`` lookups.

    A lookup's target comes from the row's ``lookuplogicalname`` annotation, as the store keeps it.
    """

    def primary_id(self, table: str) -> str:
        return f"{table}id"

    def primary_name(self, table: str) -> str | None:
        return None

    def value_kind(self, table: str, attribute: str) -> ValueKind:
        return ValueKind.PLAIN

    def lookup_target(self, table: str, attribute: str, row: Mapping[str, object]) -> str | None:
        return stored_lookup_target(attribute, row)


class TableSchema:
    """The emulator's table definitions seen as a :class:`ContextSchema`."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def attributes(self) -> dict[str, list[str]]:
        """Each table's attribute logical names (what webhook registrations may name)."""
        return {
            name: [column.name for column in table.columns]
            for name, table in self.schema.tables.items()
        }

    def primary_id(self, table: str) -> str:
        definition = self.schema.tables.get(table)
        return definition.primary_id if definition else f"{table}id"

    def primary_name(self, table: str) -> str | None:
        definition = self.schema.tables.get(table)
        return definition.primary_name if definition else None

    def value_kind(self, table: str, attribute: str) -> ValueKind:
        definition = self.schema.tables.get(table)
        column = definition.column(attribute) if definition else None
        if column is None:
            return ValueKind.PLAIN
        if column.kind in LOOKUP_KINDS:
            return ValueKind.LOOKUP
        if column.kind in CHOICE_KINDS:
            return ValueKind.CHOICE
        if column.kind is Kind.MONEY:
            return ValueKind.MONEY
        if column.kind in (Kind.DATETIME, Kind.DATEONLY):
            return ValueKind.DATETIME
        return ValueKind.PLAIN

    def lookup_target(self, table: str, attribute: str, row: Mapping[str, object]) -> str | None:
        stored = stored_lookup_target(attribute, row)
        if stored is not None:
            return stored
        definition = self.schema.tables.get(table)
        column = definition.column(attribute) if definition else None
        if column is not None and len(column.targets) == 1:
            return column.targets[0].table
        return None


def stored_lookup_target(attribute: str, row: Mapping[str, object]) -> str | None:
    """The target table the store noted beside the lookup ``attribute`` of ``row``."""
    target = row.get(f"_{attribute}_value{LOOKUP_TABLE}")
    return target if isinstance(target, str) else None


@dataclass(frozen=True)
class Organization:
    """The environment a context comes from (``x-ms-dynamics-organization`` is ``domain``)."""

    organization_id: str
    name: str
    domain: str
    business_unit_id: str


@dataclass(frozen=True)
class Image:
    """An entity image registered on the step: ``attributes`` empty means all of them."""

    name: str
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """The plug-in step (``sdkmessageprocessingstep``) a webhook registration stands for."""

    step_id: str
    pre_images: tuple[Image, ...] = ()
    post_images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class Invocation:
    """The identifiers of one execution: the same on every delivery attempt."""

    operation_id: str
    request_id: str
    correlation_id: str
    created_on: datetime
    depth: int = 1


def attribute_name(column: str) -> str:
    """The attribute's logical name for a row column (``_parentaccountid_value`` → ``...id``)."""
    if column.startswith("_") and column.endswith("_value") and len(column) > 7:
        return column[1:-6]
    return column


def wcf_date(moment: datetime | date) -> str:
    """``/Date(ms)/`` in UTC, as DataContractJsonSerializer writes a DateTime."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"/Date({round(moment.timestamp() * 1000)})/"


def _parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def entity_reference(table: str | None, row_id: object) -> dict[str, Any]:
    """An ``EntityReference`` with its ``__type`` hint."""
    return {
        "__type": ENTITY_REFERENCE_TYPE,
        "Id": str(row_id),
        "KeyAttributes": [],
        "LogicalName": table,
        "Name": None,
        "RowVersion": None,
    }


class ContextBuilder:
    """Builds contexts for one organization with one schema."""

    def __init__(self, organization: Organization, schema: ContextSchema | None = None) -> None:
        self.organization = organization
        self.schema: ContextSchema = schema or NamingSchema()

    # values -------------------------------------------------------------------------------

    def value(self, table: str, column: str, value: object, row: Mapping[str, object]) -> object:
        """One attribute value in the context's notation."""
        if value is None:
            return None
        attribute = attribute_name(column)
        kind = self.schema.value_kind(table, attribute)
        if kind is ValueKind.LOOKUP or (kind is ValueKind.PLAIN and attribute != column):
            return entity_reference(self.schema.lookup_target(table, attribute, row), value)
        if kind is ValueKind.CHOICE:
            return {"__type": OPTION_SET_TYPE, "Value": value}
        if kind is ValueKind.MONEY:
            amount = _number(value) if isinstance(value, Decimal) else value
            return {"__type": MONEY_TYPE, "Value": amount}
        if isinstance(value, datetime | date):
            return wcf_date(value)
        if kind is ValueKind.DATETIME and isinstance(value, str):
            parsed = _parse_datetime(value)
            return wcf_date(parsed) if parsed is not None else value
        if isinstance(value, Decimal):
            return _number(value)
        if isinstance(value, UUID):
            return str(value)
        return value

    def attributes(
        self, table: str, row: Mapping[str, object], columns: Iterable[str]
    ) -> list[dict[str, Any]]:
        """``Attributes``: key/value pairs of ``columns`` of ``row`` in the row's order."""
        wanted = set(columns)
        return [
            {"key": attribute_name(column), "value": self.value(table, column, value, row)}
            for column, value in row.items()
            if column in wanted and "@" not in column
        ]

    def entity(
        self,
        table: str,
        row_id: str,
        row: Mapping[str, object],
        columns: Iterable[str],
        *,
        typed: bool,
    ) -> dict[str, Any]:
        """An ``Entity``; ``typed`` adds the ``__type`` hint (where the declared type is object)."""
        body: dict[str, Any] = {"__type": ENTITY_TYPE} if typed else {}
        body.update(
            {
                "Attributes": self.attributes(table, row, columns),
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

    # the parts of a change ----------------------------------------------------------------

    def _changed(self, change: RowChange) -> set[str]:
        """Columns the operation set: those the store names plus those whose value changed."""
        before = change.before or {}
        after = change.after or {}
        wanted = {attribute_name(c) for c in change.changed_columns}
        changed = {c for c in after if attribute_name(c) in wanted}
        changed |= {c for c, value in after.items() if c not in before or before[c] != value}
        return changed

    def target_columns(self, change: RowChange) -> list[str]:
        """The columns of the ``Target`` entity of a Create or Update."""
        after = change.after or {}
        key = self.schema.primary_id(change.table)
        if change.kind == "Create":
            explicit = {attribute_name(c) for c in change.changed_columns}
            return [
                c
                for c, v in after.items()
                if (v is not None or attribute_name(c) in explicit) and c not in _NOT_IN_TARGET
            ]
        columns = self._changed(change) - _NOT_IN_TARGET
        columns |= {c for c in (key, *_STAMPED_ON_UPDATE) if c in after}
        columns |= {c for c in after if attribute_name(c) in _STAMPED_ON_UPDATE}
        return [c for c in after if c in columns]

    def target(self, change: RowChange) -> object:
        """``Target``: the entity of a Create or Update, a reference for a Delete."""
        if change.kind == "Delete" or change.after is None:
            return entity_reference(change.table, change.row_id)
        return self.entity(
            change.table, change.row_id, change.after, self.target_columns(change), typed=True
        )

    def image(
        self, table: str, row_id: str, row: Mapping[str, object], image: Image
    ) -> dict[str, Any]:
        """One entity image: the registered attributes that have a value, and the key."""
        key = self.schema.primary_id(table)
        wanted = {attribute_name(a) for a in image.attributes} | {key}
        columns = [
            c
            for c, value in row.items()
            if value is not None and (not image.attributes or attribute_name(c) in wanted)
        ]
        return {"key": image.name, "value": self.entity(table, row_id, row, columns, typed=False)}

    def images(self, change: RowChange, step: Step) -> tuple[list[Any], list[Any]]:
        """Pre images (Update, Delete) and post images (Create, Update)."""
        pre: list[Any] = []
        post: list[Any] = []
        if change.before is not None and change.kind != "Create":
            pre = [
                self.image(change.table, change.row_id, change.before, i) for i in step.pre_images
            ]
        if change.after is not None and change.kind != "Delete":
            post = [
                self.image(change.table, change.row_id, change.after, i) for i in step.post_images
            ]
            primary_name = self.schema.primary_name(change.table)
            if primary_name is not None:
                summary = Image(PRIMARY_NAME_IMAGE, (primary_name,))
                post.append(self.image(change.table, change.row_id, change.after, summary))
        return pre, post

    # the whole context --------------------------------------------------------------------

    def _frame(
        self, change: RowChange, step: Step, run: Invocation, *, stage: int, mode: int
    ) -> dict[str, Any]:
        org = self.organization
        return {
            "BusinessUnitId": org.business_unit_id,
            "CorrelationId": run.correlation_id,
            "Depth": run.depth,
            "InitiatingUserId": change.caller.user_id,
            "InputParameters": [],
            "IsExecutingOffline": False,
            "IsInTransaction": mode == 0,
            "IsOfflinePlayback": False,
            "IsolationMode": 1,
            "MessageName": change.kind,
            "Mode": mode,
            "OperationCreatedOn": wcf_date(run.created_on),
            "OperationId": run.operation_id,
            "OrganizationId": org.organization_id,
            "OrganizationName": org.name,
            "OutputParameters": [],
            "OwningExtension": {
                "Id": step.step_id,
                "KeyAttributes": [],
                "LogicalName": "sdkmessageprocessingstep",
                "Name": None,
                "RowVersion": None,
            },
            "ParentContext": None,
            "PostEntityImages": [],
            "PreEntityImages": [],
            "PrimaryEntityId": change.row_id,
            "PrimaryEntityName": change.table,
            "RequestId": run.request_id,
            "SecondaryEntityName": "none",
            "SharedVariables": [],
            "Stage": stage,
            "UserId": change.caller.user_id,
        }

    def _parent(self, change: RowChange, step: Step, run: Invocation) -> dict[str, Any]:
        """The main-operation context the asynchronous step was queued from (stage 30)."""
        parent = self._frame(change, step, run, stage=STAGE_MAIN_OPERATION, mode=0)
        if change.after is not None and change.kind != "Delete":
            key = self.schema.primary_id(change.table)
            submitted = {attribute_name(c) for c in change.changed_columns} | {key}
            columns = [c for c in change.after if attribute_name(c) in submitted]
            target: object = self.entity(
                change.table, change.row_id, change.after, columns, typed=True
            )
            parent["InputParameters"] = [
                {"key": "Target", "value": target},
                {"key": "SuppressDuplicateDetection", "value": False},
            ]
        else:
            parent["InputParameters"] = [{"key": "Target", "value": self.target(change)}]
        parent["SharedVariables"] = [
            {
                "key": "ChangedEntityTypes",
                "value": [{"__type": STRING_PAIR_TYPE, "key": change.table, "value": change.kind}],
            }
        ]
        return parent

    def build(self, change: RowChange, step: Step, run: Invocation) -> dict[str, Any]:
        """The asynchronous post-operation context of ``change`` for ``step``."""
        context = self._frame(change, step, run, stage=STAGE_POST_OPERATION, mode=MODE_ASYNCHRONOUS)
        context["InputParameters"] = [{"key": "Target", "value": self.target(change)}]
        if change.kind == "Create":
            context["OutputParameters"] = [{"key": "id", "value": change.row_id}]
        context["ParentContext"] = self._parent(change, step, run)
        context["PreEntityImages"], context["PostEntityImages"] = self.images(change, step)
        return context


def serialize(context: Mapping[str, Any], limit: int = MAX_PAYLOAD_BYTES) -> tuple[bytes, bool]:
    """The body as Dataverse writes it, and whether it had to be stripped for size.

    Over ``limit`` bytes the parent context, input parameters and images are removed and the
    sender adds ``x-ms-dynamics-msg-size-exceeded``.
    """
    body = _dumps(context)
    if len(body) <= limit:
        return body, False
    smaller = {k: v for k, v in context.items() if k not in STRIPPED_WHEN_TOO_LARGE}
    return _dumps(smaller), True


def _dumps(document: Mapping[str, Any]) -> bytes:
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.replace("/", "\\/").encode("utf-8")
