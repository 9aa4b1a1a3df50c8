"""A small fake schema (account, contact, task) and rows for the query language tests.

The tables satisfy the query package's protocols the way the emulator's real tables do;
``FakeRelated`` follows navigation properties over in-memory rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from d365sap.emulators.dataverse.query import QueryError
from d365sap.emulators.dataverse.query.types import QueryTable, Row


@dataclass(frozen=True)
class Column:
    logical_name: str
    edm_type: str
    is_lookup: bool = False


@dataclass(frozen=True)
class Navigation:
    name: str
    collection: bool
    target_name: str
    lookup: str  # the referencing lookup column (on this table if single, on target if many)
    registry: dict[str, Table] = field(repr=False, compare=False, hash=False)

    @property
    def target(self) -> Table:
        return self.registry[self.target_name]


@dataclass
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    columns: dict[str, Column]
    navigations: dict[str, Navigation] = field(default_factory=dict)

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)

    def navigation(self, name: str) -> Navigation | None:
        return self.navigations.get(name)


def _columns(*specs: tuple[str, str]) -> dict[str, Column]:
    return {
        name: Column(name, edm, is_lookup=name.startswith("_") and name.endswith("_value"))
        for name, edm in specs
    }


def build_schema() -> dict[str, Table]:
    registry: dict[str, Table] = {}
    account = Table(
        "account",
        "accounts",
        "accountid",
        _columns(
            ("accountid", "Edm.Guid"),
            ("name", "Edm.String"),
            ("accountnumber", "Edm.String"),
            ("description", "Edm.String"),
            ("revenue", "Edm.Decimal"),
            ("numberofemployees", "Edm.Int32"),
            ("versionnumber", "Edm.Int64"),
            ("address1_latitude", "Edm.Double"),
            ("creditonhold", "Edm.Boolean"),
            ("createdon", "Edm.DateTimeOffset"),
            ("lastusedincampaign", "Edm.DateTimeOffset"),
            ("openedon", "Edm.Date"),
            ("entityimage", "Edm.Binary"),
            ("_primarycontactid_value", "Edm.Guid"),
            ("_parentaccountid_value", "Edm.Guid"),
        ),
    )
    contact = Table(
        "contact",
        "contacts",
        "contactid",
        _columns(
            ("contactid", "Edm.Guid"),
            ("fullname", "Edm.String"),
            ("firstname", "Edm.String"),
            ("lastname", "Edm.String"),
            ("jobtitle", "Edm.String"),
            ("birthdate", "Edm.Date"),
            ("_parentcustomerid_value", "Edm.Guid"),
        ),
    )
    task = Table(
        "task",
        "tasks",
        "activityid",
        _columns(
            ("activityid", "Edm.Guid"),
            ("subject", "Edm.String"),
            ("statecode", "Edm.Int32"),
            ("_regardingobjectid_value", "Edm.Guid"),
        ),
    )
    registry.update(account=account, contact=contact, task=task)
    account.navigations = {
        "primarycontactid": Navigation(
            "primarycontactid", False, "contact", "_primarycontactid_value", registry
        ),
        "parentaccountid": Navigation(
            "parentaccountid", False, "account", "_parentaccountid_value", registry
        ),
        "contact_customer_accounts": Navigation(
            "contact_customer_accounts", True, "contact", "_parentcustomerid_value", registry
        ),
        "Account_Tasks": Navigation(
            "Account_Tasks", True, "task", "_regardingobjectid_value", registry
        ),
    }
    contact.navigations = {
        "parentcustomerid_account": Navigation(
            "parentcustomerid_account", False, "account", "_parentcustomerid_value", registry
        ),
        "Contact_Tasks": Navigation(
            "Contact_Tasks", True, "task", "_regardingobjectid_value", registry
        ),
    }
    return registry


SCHEMA = build_schema()
ACCOUNT = SCHEMA["account"]
CONTACT = SCHEMA["contact"]
TASK = SCHEMA["task"]


def guid(n: int) -> uuid.UUID:
    """A readable guid: ``00000000-0000-0000-0000-00000000000n``."""
    return uuid.UUID(int=n)


def account(n: int, name: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "accountid": guid(n),
        "name": name,
        "accountnumber": None,
        "description": None,
        "revenue": None,
        "numberofemployees": None,
        "versionnumber": n,
        "address1_latitude": None,
        "creditonhold": False,
        "createdon": datetime(2024, 1, n % 28 + 1, 9, 0, tzinfo=UTC),
        "lastusedincampaign": None,
        "openedon": None,
        "entityimage": None,
        "_primarycontactid_value": None,
        "_parentaccountid_value": None,
    }
    row.update(values)
    return row


def contact(n: int, first: str, last: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "contactid": guid(1000 + n),
        "fullname": f"{first} {last}",
        "firstname": first,
        "lastname": last,
        "jobtitle": None,
        "birthdate": None,
        "_parentcustomerid_value": None,
    }
    row.update(values)
    return row


def task(n: int, subject: str, regarding: object, statecode: int = 0) -> dict[str, object]:
    return {
        "activityid": guid(5000 + n),
        "subject": subject,
        "statecode": statecode,
        "_regardingobjectid_value": regarding,
    }


class FakeRelated:
    """Follows navigation properties over lists of rows per table."""

    def __init__(self, rows: Mapping[str, Sequence[Row]]) -> None:
        self.rows = rows

    def one(self, table: QueryTable, navigation: str, row: Row) -> Row | None:
        nav = SCHEMA[table.logical_name].navigations[navigation]
        key = row.get(nav.lookup)
        target = nav.target
        return next(
            (r for r in self.rows[target.logical_name] if key and r[target.primary_id] == key),
            None,
        )

    def many(self, table: QueryTable, navigation: str, row: Row) -> Sequence[Row]:
        nav = SCHEMA[table.logical_name].navigations[navigation]
        key = row[table.primary_id]
        return [r for r in self.rows[nav.target.logical_name] if r.get(nav.lookup) == key]


def error_of(call: object, *args: object, **kwargs: object) -> QueryError:
    """The QueryError ``call(*args)`` raises (fails the test if it raises none)."""
    assert callable(call)
    try:
        call(*args, **kwargs)
    except QueryError as error:
        return error
    raise AssertionError("no QueryError raised")
