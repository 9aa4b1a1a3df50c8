"""A webhook's RemoteExecutionContext to the flow's DataverseChange: ids, account, kind, errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from d365sap.emulators.dataverse.events import RowChange
from d365sap.emulators.dataverse.messages import Caller
from d365sap.emulators.dataverse.remote_context import (
    ContextBuilder,
    Image,
    Invocation,
    Organization,
    Step,
    TableSchema,
    serialize,
)
from d365sap.emulators.dataverse.tables import build_schema
from d365sap.errors import ValidationError
from d365sap.flows.dataverse_messages import ChangeKind, ChangeSource, ChangeTable
from d365sap.flows.dataverse_webhook import change_from_context
from support.webhook_contexts import context, reference

ACCOUNT = "8b9e2f1c-3a4d-4e5f-9a0b-1c2d3e4f5a6b"
DETAIL = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
ERP_ACCOUNT = "2a3b4c5d-6e7f-4081-9a2b-3c4d5e6f7a8b"


def test_account_update_names_the_account_itself() -> None:
    document = context("account", ACCOUNT, "Update", target={"name": "Contoso"})
    reported = change_from_context(document)
    change = reported.change
    assert change.table is ChangeTable.ACCOUNT
    assert change.id == uuid.UUID(ACCOUNT)
    assert change.account_id == uuid.UUID(ACCOUNT)
    assert change.change is ChangeKind.UPDATE
    assert change.source is ChangeSource.WEBHOOK
    assert change.dry_run is False
    assert reported.request_id == document["RequestId"]
    assert reported.correlation_id == document["CorrelationId"]
    assert not reported.write_back_only


def test_detail_takes_its_account_from_the_target_lookup() -> None:
    target = {"sap_salesgroup": "171", "sap_accountid": reference("account", ACCOUNT)}
    change = change_from_context(context("sap_erpaccountdetail", DETAIL, target=target)).change
    assert change.table is ChangeTable.ERP_ACCOUNT_DETAIL
    assert change.account_id == uuid.UUID(ACCOUNT)


def test_account_from_the_post_image_and_its_version() -> None:
    document = context(
        "sap_erpaccount",
        ERP_ACCOUNT,
        target={"sap_name1": "X"},
        post_image={"sap_accountid": reference("account", ACCOUNT), "versionnumber": 4711},
    )
    change = change_from_context(document).change
    assert change.account_id == uuid.UUID(ACCOUNT)
    assert change.version == 4711


def test_delete_takes_account_and_version_from_the_pre_image() -> None:
    document = context(
        "sap_erpaccountdetail",
        DETAIL,
        "Delete",
        pre_image={"sap_accountid": reference("account", ACCOUNT), "versionnumber": "12"},
    )
    change = change_from_context(document).change
    assert change.change is ChangeKind.DELETE
    assert change.account_id == uuid.UUID(ACCOUNT)
    assert change.version == 12


def test_detail_without_lookup_leaves_the_account_open() -> None:
    change = change_from_context(context("sap_erpaccountdetail", DETAIL, "Create")).change
    assert change.change is ChangeKind.CREATE
    assert change.account_id is None
    assert change.version is None


def test_header_request_id_is_used_and_must_agree() -> None:
    document = context("account", ACCOUNT)
    del document["RequestId"]
    header = str(uuid.uuid4())
    assert change_from_context(document, request_id=header).request_id == header
    document["RequestId"] = str(uuid.uuid4())
    with pytest.raises(ValidationError) as raised:
        change_from_context(document, request_id=header)
    assert raised.value.field == "x-request-id"


def test_write_back_echo_is_recognised() -> None:
    echo = context(
        "sap_erpaccountdetail",
        DETAIL,
        target={"sap_sapcustomernumber": "17100009", "sap_syncstatus": 100000001},
    )
    assert change_from_context(echo).write_back_only
    business = context(
        "sap_erpaccountdetail",
        DETAIL,
        target={"sap_sapcustomernumber": "17100009", "sap_salesgroup": "171"},
    )
    assert not change_from_context(business).write_back_only


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("MessageName"), "MessageName"),
        (lambda d: d.update(MessageName="Merge"), "MessageName"),
        (lambda d: d.update(PrimaryEntityName="contact"), "PrimaryEntityName"),
        (lambda d: d.update(PrimaryEntityId="not-a-guid"), "PrimaryEntityId"),
        (lambda d: d.pop("RequestId"), "RequestId"),
        (lambda d: d.update(RequestId=17), "RequestId"),
        (lambda d: d.update(InputParameters={"Target": 1}), "InputParameters"),
        (lambda d: d.update(InputParameters=[{"value": 1}]), "InputParameters[0]"),
        (
            lambda d: d["InputParameters"][0]["value"].update(LogicalName="contact"),
            "InputParameters.Target.LogicalName",
        ),
        (
            lambda d: d["InputParameters"][0]["value"].update(Id=str(uuid.uuid4())),
            "InputParameters.Target.Id",
        ),
        (
            lambda d: d["InputParameters"][0]["value"]["Attributes"].append(
                {"key": "sap_accountid", "value": {"Id": "nope"}}
            ),
            "InputParameters.Target.sap_accountid.Id",
        ),
        (
            lambda d: d.update(PostEntityImages=[{"key": "post", "value": []}]),
            "PostEntityImages[0]",
        ),
    ],
)
def test_invalid_contexts_name_the_member(mutate: Any, field: str) -> None:
    document = context("sap_erpaccountdetail", DETAIL)
    mutate(document)
    with pytest.raises(ValidationError) as raised:
        change_from_context(document)
    assert raised.value.field == field


def test_not_an_object() -> None:
    with pytest.raises(ValidationError) as raised:
        change_from_context([1, 2])
    assert raised.value.field == "body"


def test_context_as_the_emulator_posts_it() -> None:
    """The emulator's own serialisation (escaped slashes, typed lookups) reads the same."""
    schema = TableSchema(build_schema())
    builder = ContextBuilder(
        Organization(str(uuid.uuid4()), "org", "org.crm.dynamics.com", str(uuid.uuid4())), schema
    )
    row = {
        "sap_erpaccountdetailid": DETAIL,
        "sap_name": "1710/10/00",
        "_sap_accountid_value": ACCOUNT,
        "_sap_erpaccountid_value": ERP_ACCOUNT,
        "sap_salesgroup": "170",
        "versionnumber": 99,
        "modifiedon": datetime(2026, 1, 5, tzinfo=UTC),
    }
    request_id = str(uuid.uuid4())
    built = builder.build(
        RowChange(
            table="sap_erpaccountdetail",
            entity_set="sap_erpaccountdetails",
            row_id=DETAIL,
            kind="Create",
            before=None,
            after=row,
            version=99,
            caller=Caller(user_id=str(uuid.uuid4()), client_id="c"),
            request_id="web-api-request",
        ),
        Step(str(uuid.uuid4()), post_images=(Image("post", ("sap_accountid", "versionnumber")),)),
        Invocation(str(uuid.uuid4()), request_id, str(uuid.uuid4()), datetime.now(UTC)),
    )
    body, _ = serialize(built)
    reported = change_from_context(json.loads(body), request_id=request_id)
    assert reported.change.account_id == uuid.UUID(ACCOUNT)
    assert reported.change.change is ChangeKind.CREATE
    assert reported.change.version == 99
    assert reported.request_id == request_id
