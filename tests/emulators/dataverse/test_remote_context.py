"""RemoteExecutionContext JSON: the documented shape, value notation and the size limit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from d365sap.emulators.dataverse.events import ChangeKind, RowChange
from d365sap.emulators.dataverse.messages import Caller
from d365sap.emulators.dataverse.remote_context import (
    ENTITY_REFERENCE_TYPE,
    ENTITY_TYPE,
    MONEY_TYPE,
    OPTION_SET_TYPE,
    ContextBuilder,
    Image,
    Invocation,
    NamingSchema,
    Organization,
    Step,
    TableSchema,
    ValueKind,
    attribute_name,
    serialize,
    wcf_date,
)
from d365sap.emulators.dataverse.tables import build_schema

# The members of the documented sample (use-webhooks.md), at the top and in entities.
CONTEXT_MEMBERS = [
    "BusinessUnitId", "CorrelationId", "Depth", "InitiatingUserId", "InputParameters",
    "IsExecutingOffline", "IsInTransaction", "IsOfflinePlayback", "IsolationMode", "MessageName",
    "Mode", "OperationCreatedOn", "OperationId", "OrganizationId", "OrganizationName",
    "OutputParameters", "OwningExtension", "ParentContext", "PostEntityImages", "PreEntityImages",
    "PrimaryEntityId", "PrimaryEntityName", "RequestId", "SecondaryEntityName", "SharedVariables",
    "Stage", "UserId",
]  # fmt: skip
ENTITY_MEMBERS = [
    "Attributes", "EntityState", "FormattedValues", "Id", "KeyAttributes", "LogicalName",
    "RelatedEntities", "RowVersion",
]  # fmt: skip
REFERENCE_MEMBERS = ["__type", "Id", "KeyAttributes", "LogicalName", "Name", "RowVersion"]

USER = "75c2dd85-e89e-e711-8122-000d3aa2331c"
CONTACT = "6d81597f-0f9f-e711-8122-000d3aa2331c"
ACCOUNT = "60c4e274-0d87-e711-80e5-00155db19e6d"
ORG = Organization(
    organization_id="4ef5b371-e89e-e711-8122-000d3aa2331c",
    name="OrgName",
    domain="orgname.crm.dynamics.com",
    business_unit_id="e2b9dd85-e89e-e711-8122-000d3aa2331c",
)
RUN = Invocation(
    operation_id="4af10637-4ea2-e711-8122-000d3aa2331c",
    request_id="0b3c5e1a-0000-4000-8000-000000000001",
    correlation_id="b374239d-4233-41a9-8b17-a86cb4f737b5",
    created_on=datetime(2017, 9, 26, 6, 57, 28, tzinfo=UTC),
)
STEP = Step(step_id="75417616-4ea2-e711-8122-000d3aa2331c")


class ContactSchema:
    """Types of a few contact/account columns, as the table definitions would give them."""

    kinds: Mapping[str, ValueKind] = {
        "modifiedon": ValueKind.DATETIME,
        "createdon": ValueKind.DATETIME,
        "modifiedby": ValueKind.LOOKUP,
        "parentcustomerid": ValueKind.LOOKUP,
        "statecode": ValueKind.CHOICE,
        "gendercode": ValueKind.CHOICE,
        "creditlimit": ValueKind.MONEY,
    }

    def primary_id(self, table: str) -> str:
        return f"{table}id"

    def primary_name(self, table: str) -> str | None:
        return "fullname" if table == "contact" else "name"

    def value_kind(self, table: str, attribute: str) -> ValueKind:
        return self.kinds.get(attribute, ValueKind.PLAIN)

    def lookup_target(self, table: str, attribute: str, row: Mapping[str, object]) -> str | None:
        if attribute == "modifiedby":
            return "systemuser"
        return "account" if attribute == "parentcustomerid" else None


def contact(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "contactid": CONTACT,
        "firstname": "Jim",
        "lastname": "Glynn",
        "fullname": "Jim Glynn (sample)",
        "_parentcustomerid_value": ACCOUNT,
        "statecode": 0,
        "creditlimit": Decimal("1500.0000"),
        "createdon": "2017-09-25T10:00:00Z",
        "modifiedon": "2017-09-25T10:00:00Z",
        "_modifiedby_value": USER,
        "telephone1": None,
        "versionnumber": 10,
    }
    row.update(changes)
    return row


def change(
    kind: ChangeKind,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    changed: frozenset[str] = frozenset(),
) -> RowChange:
    return RowChange(
        table="contact",
        entity_set="contacts",
        row_id=CONTACT,
        kind=kind,
        before=before,
        after=after,
        version=11,
        caller=Caller(user_id=USER, client_id="client"),
        request_id=RUN.request_id,
        changed_columns=changed,
    )


UPDATED = contact(
    firstname="James",
    fullname="James Glynn (sample)",
    modifiedon="2017-09-26T00:04:07Z",
    versionnumber=11,
)


@pytest.fixture
def builder() -> ContextBuilder:
    return ContextBuilder(ORG, ContactSchema())


def attributes(entity: dict[str, Any]) -> dict[str, Any]:
    return {pair["key"]: pair["value"] for pair in entity["Attributes"]}


def test_update_context_has_the_documented_members_and_values(builder: ContextBuilder) -> None:
    context = builder.build(
        change("Update", contact(), UPDATED, frozenset({"firstname"})), STEP, RUN
    )
    assert list(context) == CONTEXT_MEMBERS
    assert context["MessageName"] == "Update"
    assert (context["Stage"], context["Mode"], context["Depth"]) == (40, 1, 1)
    assert context["PrimaryEntityName"] == "contact"
    assert context["PrimaryEntityId"] == CONTACT
    assert context["UserId"] == context["InitiatingUserId"] == USER
    assert context["OrganizationId"] == ORG.organization_id
    assert context["OrganizationName"] == "OrgName"
    assert context["BusinessUnitId"] == ORG.business_unit_id
    assert context["CorrelationId"] == RUN.correlation_id
    assert context["RequestId"] == RUN.request_id
    assert context["OperationId"] == RUN.operation_id
    assert context["OperationCreatedOn"] == "/Date(1506409048000)/"
    assert context["SecondaryEntityName"] == "none"
    assert context["OwningExtension"] == {
        "Id": STEP.step_id,
        "KeyAttributes": [],
        "LogicalName": "sdkmessageprocessingstep",
        "Name": None,
        "RowVersion": None,
    }
    assert context["OutputParameters"] == []
    [target_pair] = context["InputParameters"]
    assert target_pair["key"] == "Target"
    target = target_pair["value"]
    assert list(target) == ["__type", *ENTITY_MEMBERS]
    assert (
        target["__type"] == ENTITY_TYPE == "Entity:http://schemas.microsoft.com/xrm/2011/Contracts"
    )
    assert (target["Id"], target["LogicalName"]) == (CONTACT, "contact")
    # what the update set, what the server changed with it, and the key; nothing else
    assert attributes(target) == {
        "contactid": CONTACT,
        "firstname": "James",
        "fullname": "James Glynn (sample)",
        "modifiedon": "/Date(1506384247000)/",
        "modifiedby": {
            "__type": "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts",
            "Id": USER,
            "KeyAttributes": [],
            "LogicalName": "systemuser",
            "Name": None,
            "RowVersion": None,
        },
    }
    assert context["PreEntityImages"] == []
    [summary] = context["PostEntityImages"]
    assert summary["key"] == "AsynchronousStepPrimaryName"
    assert "__type" not in summary["value"]
    assert list(summary["value"]) == ENTITY_MEMBERS
    assert attributes(summary["value"]) == {
        "contactid": CONTACT,
        "fullname": "James Glynn (sample)",
    }


def test_parent_context_is_the_main_operation_with_the_submitted_columns(
    builder: ContextBuilder,
) -> None:
    context = builder.build(
        change("Update", contact(), UPDATED, frozenset({"firstname"})), STEP, RUN
    )
    parent = context["ParentContext"]
    assert list(parent) == CONTEXT_MEMBERS
    assert (parent["Stage"], parent["Mode"], parent["ParentContext"]) == (30, 0, None)
    assert parent["IsInTransaction"] is True and context["IsInTransaction"] is False
    target, suppress = parent["InputParameters"]
    assert attributes(target["value"]) == {"contactid": CONTACT, "firstname": "James"}
    assert suppress == {"key": "SuppressDuplicateDetection", "value": False}
    [shared] = parent["SharedVariables"]
    assert shared["key"] == "ChangedEntityTypes"
    assert shared["value"] == [
        {
            "__type": "KeyValuePairOfstringstring:#System.Collections.Generic",
            "key": "contact",
            "value": "Update",
        }
    ]


def test_create_target_carries_typed_values_and_the_new_id(builder: ContextBuilder) -> None:
    created = contact(gendercode=2, birthdate=date(1980, 5, 17))
    context = builder.build(change("Create", None, created), STEP, RUN)
    assert context["OutputParameters"] == [{"key": "id", "value": CONTACT}]
    values = attributes(context["InputParameters"][0]["value"])
    assert "telephone1" not in values  # null and not given
    assert values["statecode"] == {"__type": OPTION_SET_TYPE, "Value": 0}
    assert values["gendercode"] == {
        "__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts",
        "Value": 2,
    }
    assert values["creditlimit"] == {
        "__type": "Money:http://schemas.microsoft.com/xrm/2011/Contracts",
        "Value": 1500,
    }
    assert MONEY_TYPE.startswith("Money:")
    assert values["parentcustomerid"]["LogicalName"] == "account"
    assert values["parentcustomerid"]["Id"] == ACCOUNT
    assert values["birthdate"] == "/Date(327369600000)/"
    assert "versionnumber" not in values  # the row version is no attribute of the target
    assert context["PreEntityImages"] == []


def test_create_keeps_explicit_nulls(builder: ContextBuilder) -> None:
    context = builder.build(change("Create", None, contact(), frozenset({"telephone1"})), STEP, RUN)
    assert attributes(context["InputParameters"][0]["value"])["telephone1"] is None


def test_delete_target_is_a_reference_and_pre_images_are_filtered(builder: ContextBuilder) -> None:
    step = Step(
        step_id=STEP.step_id,
        pre_images=(Image("PreImage", ("fullname", "parentcustomerid")), Image("All")),
        post_images=(Image("PostImage"),),
    )
    context = builder.build(change("Delete", contact(), None), step, RUN)
    target = context["InputParameters"][0]["value"]
    assert list(target) == REFERENCE_MEMBERS
    assert target["__type"] == ENTITY_REFERENCE_TYPE
    assert (target["Id"], target["LogicalName"]) == (CONTACT, "contact")
    assert context["PostEntityImages"] == []
    pre, everything = context["PreEntityImages"]
    assert pre["key"] == "PreImage"
    assert set(attributes(pre["value"])) == {"contactid", "fullname", "parentcustomerid"}
    assert "telephone1" not in attributes(everything["value"])  # images leave out nulls
    assert "lastname" in attributes(everything["value"])
    assert context["ParentContext"]["InputParameters"] == context["InputParameters"]


def test_update_images_show_before_and_after(builder: ContextBuilder) -> None:
    step = Step(
        step_id="s",
        pre_images=(Image("Pre", ("firstname",)),),
        post_images=(Image("Post", ("firstname",)),),
    )
    context = builder.build(change("Update", contact(), UPDATED), step, RUN)
    [pre] = context["PreEntityImages"]
    post = context["PostEntityImages"][0]
    assert attributes(pre["value"])["firstname"] == "Jim"
    assert attributes(post["value"])["firstname"] == "James"
    assert [image["key"] for image in context["PostEntityImages"]] == [
        "Post",
        "AsynchronousStepPrimaryName",
    ]


def test_naming_schema_still_marks_lookups_and_dates() -> None:
    plain = ContextBuilder(ORG, NamingSchema())
    stamped = contact(
        modifiedon=datetime(2017, 9, 26, 0, 4, 7, tzinfo=UTC),
        **{"_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account"},
    )
    context = plain.build(change("Create", None, stamped), STEP, RUN)
    values = attributes(context["InputParameters"][0]["value"])
    assert not [name for name in values if "@" in name]  # the store's notes are not attributes
    assert values["parentcustomerid"]["__type"] == ENTITY_REFERENCE_TYPE
    assert values["parentcustomerid"]["LogicalName"] == "account"
    assert values["modifiedby"]["LogicalName"] is None  # no note beside it
    assert values["modifiedon"] == "/Date(1506384247000)/"
    assert values["createdon"] == "2017-09-25T10:00:00Z"  # a string the schema does not type
    assert values["creditlimit"] == 1500
    assert context["PostEntityImages"] == []  # no primary name known


def test_serialized_like_datacontract_json(builder: ContextBuilder) -> None:
    context = builder.build(
        change("Update", contact(), UPDATED, frozenset({"firstname"})), STEP, RUN
    )
    body, stripped = serialize(context)
    assert not stripped
    text = body.decode("utf-8")
    assert '"OperationCreatedOn":"\\/Date(1506409048000)\\/"' in text
    assert "http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts" in text
    assert "/" not in text.replace("\\/", "")
    assert json.loads(body) == context


def test_oversized_context_is_stripped(builder: ContextBuilder) -> None:
    big = contact(description="x" * 300_000)
    context = builder.build(change("Create", None, big), STEP, RUN)
    body, stripped = serialize(context)
    assert stripped
    document = json.loads(body)
    for member in ("ParentContext", "InputParameters", "PreEntityImages", "PostEntityImages"):
        assert member not in document
    assert document["MessageName"] == "Create"
    assert len(body) < 10_000


def test_helpers() -> None:
    assert attribute_name("_parentcustomerid_value") == "parentcustomerid"
    assert attribute_name("firstname") == "firstname"
    assert attribute_name("_value") == "_value"
    assert wcf_date(datetime(1970, 1, 1, 0, 0, 1)) == "/Date(1000)/"
    assert wcf_date(date(1970, 1, 2)) == "/Date(86400000)/"


def test_table_schema_types_from_the_emulator_tables() -> None:
    schema = TableSchema(build_schema())
    assert schema.primary_id("account") == "accountid"
    assert schema.primary_name("contact") == "fullname"
    assert schema.value_kind("account", "revenue") is ValueKind.MONEY
    assert schema.value_kind("account", "statecode") is ValueKind.CHOICE
    assert schema.value_kind("contact", "parentcustomerid") is ValueKind.LOOKUP
    assert schema.value_kind("contact", "createdon") is ValueKind.DATETIME
    assert schema.value_kind("contact", "firstname") is ValueKind.PLAIN
    assert schema.value_kind("contact", "nosuchcolumn") is ValueKind.PLAIN
    note = "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
    assert schema.lookup_target("contact", "parentcustomerid", {note: "contact"}) == "contact"
    assert schema.lookup_target("contact", "parentcustomerid", {}) is None  # two possible tables
    assert schema.lookup_target("contact", "transactioncurrencyid", {}) == "transactioncurrency"
    account = {
        "accountid": ACCOUNT,
        "name": "Contoso",
        "revenue": Decimal("20000.5"),
        "statecode": 0,
    }
    built = ContextBuilder(ORG, schema).build(
        RowChange(
            table="account",
            entity_set="accounts",
            row_id=ACCOUNT,
            kind="Create",
            before=None,
            after=account,
            version=1,
            caller=Caller(user_id=USER, client_id="c"),
            request_id="r",
        ),
        STEP,
        RUN,
    )
    values = attributes(built["InputParameters"][0]["value"])
    assert values["revenue"] == {"__type": MONEY_TYPE, "Value": 20000.5}
    assert values["statecode"] == {"__type": OPTION_SET_TYPE, "Value": 0}
    [summary] = built["PostEntityImages"]
    assert attributes(summary["value"]) == {"accountid": ACCOUNT, "name": "Contoso"}
