"""Reading one account's customer rows from Dataverse, as the native customer flow needs them.

A trigger only says "this row changed". The flow always works on the whole account the row
belongs to, read fresh when the message runs: the account, its ERP accounts and ERP account
details (one request, the two collections expanded) and the linked ERP organisations they point
at (one filtered request). Two reasons:

* messages of one account share a business key, and the engine skips an older message once a
  newer one of the same key was applied (last-applied guard). That is only right if every
  message covers everything an older one would have, i.e. the whole account;
* a retried or late message must never send a stale copy: it reads the rows as they are now.

:func:`locate_account` finds the account of a changed ERP account or detail when the trigger did
not know it. :class:`AccountSnapshot` turns the rows into :class:`SyncRecord`\\ s: one per ERP
account detail (sales-area data) and one per ERP account (general data), each with the
:class:`~d365sap.mapping.dataverse_customer.CustomerRows` the mappings take.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_keys import guid
from d365sap.errors import D365SapError, NotFoundError, TransientError, ValidationError
from d365sap.flows.batch_buffer import BatchBuffer
from d365sap.flows.dataverse_messages import ChangeTable, DataverseChange
from d365sap.mapping.dataverse_customer import CustomerRows, column
from d365sap.model.crm import LinkedErpOrg

ACCOUNTS = "accounts"
ERP_ACCOUNTS = "sap_erpaccounts"
DETAILS = "sap_erpaccountdetails"
ORGS = "sap_linkederporgs"
ERP_ACCOUNTS_OF_ACCOUNT = "sap_account_sap_erpaccount"
DETAILS_OF_ACCOUNT = "sap_account_sap_erpaccountdetail"
INACTIVE = 1
"""``statecode`` of a deactivated row: it is not sent to SAP."""

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "accountid",
    "name",
    "accountnumber",
    "address1_line1",
    "address1_line2",
    "address1_line3",
    "address1_postofficebox",
    "address1_postalcode",
    "address1_city",
    "address1_stateorprovince",
    "address1_country",
    "telephone1",
    "fax",
    "emailaddress1",
    "websiteurl",
    "statecode",
)
ERP_ACCOUNT_COLUMNS: tuple[str, ...] = (
    "sap_erpaccountid",
    "_sap_accountid_value",
    "_sap_linkederporgid_value",
    "sap_number",
    "sap_name1",
    "sap_name2",
    "sap_name3",
    "sap_name4",
    "sap_searchname",
    "sap_custgroup",
    "sap_language",
    "statecode",
)
DETAIL_COLUMNS: tuple[str, ...] = (
    "sap_erpaccountdetailid",
    "_sap_erpaccountid_value",
    "_sap_accountid_value",
    "_sap_linkederporgid_value",
    "sap_number",
    "sap_deletionflag",
    "sap_customergroup",
    "sap_salesdistrict",
    "sap_salesoffice",
    "sap_salesgroup",
    "sap_currency",
    "statecode",
)
ORG_COLUMNS: tuple[str, ...] = (
    "sap_linkederporgid",
    "sap_name",
    "sap_erpsystemtype",
    *(name for name in LinkedErpOrg.model_fields if name.startswith("sap_")),
)

Row = Mapping[str, Any]
RecordKind = Literal["sales_area", "general"]


def _text(row: Row, name: str) -> str | None:
    value = row.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    return None


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class SyncRecord:
    """One thing the flow sends to SAP: a detail's sales area, or an ERP account's general data.

    ``entity_set``/``row_id``/``row`` name the Dataverse row the outcome is written back to.
    ``rows`` is ``None`` when the rows do not fit together (``problem`` says why).
    """

    kind: RecordKind
    entity_set: str
    row_id: str
    row: Row
    rows: CustomerRows | None
    erp_account_id: str | None
    problem: ValidationError | None = None

    @property
    def inactive(self) -> bool:
        """Deactivated in Dynamics: not sent."""
        return self.row.get("statecode") == INACTIVE

    @property
    def label(self) -> str:
        """``sap_erpaccountdetail 3f2e…``, for results and logs."""
        table = "sap_erpaccountdetail" if self.kind == "sales_area" else "sap_erpaccount"
        return f"{table} {self.row_id}"


@dataclass(frozen=True)
class AccountSnapshot:
    """An account's rows as read in one go; ``account`` is ``None`` when it no longer exists."""

    account_id: str
    account: Row | None
    erp_accounts: tuple[Row, ...] = ()
    details: tuple[Row, ...] = ()
    orgs: Mapping[str, Row] = field(default_factory=dict)

    @property
    def detail_ids(self) -> frozenset[str]:
        """Ids of the details that exist now."""
        found = (_text(detail, "sap_erpaccountdetailid") for detail in self.details)
        return frozenset(value for value in found if value)

    def records(self) -> list[SyncRecord]:
        """Sales-area records (details) first, then general data (ERP accounts).

        Details go first because a detail of a customer SAP does not know yet creates it, with
        its general data; the ERP account's general record then finds the number.
        """
        account = self.account
        if account is None:
            return []
        erp_by_id = {_text(erp, "sap_erpaccountid"): erp for erp in self.erp_accounts}
        records: list[SyncRecord] = []
        for detail in self.details:
            detail_id = _text(detail, "sap_erpaccountdetailid") or ""
            erp_id = _text(detail, "_sap_erpaccountid_value")
            erp = erp_by_id.get(erp_id)
            org_id = _text(detail, "_sap_linkederporgid_value")
            if erp is None:
                problem = ValidationError(
                    column("sap_erpaccountdetail", "_sap_erpaccountid_value"),
                    f"points at {erp_id or 'nothing'}, not at an ERP account of account "
                    f"{self.account_id}",
                )
                records.append(
                    SyncRecord("sales_area", DETAILS, detail_id, detail, None, erp_id, problem)
                )
                continue
            rows = CustomerRows(
                account=account,
                erp_account=erp,
                detail=detail,
                org=self.orgs.get(org_id) if org_id else None,
            )
            records.append(SyncRecord("sales_area", DETAILS, detail_id, detail, rows, erp_id))
        for erp in self.erp_accounts:
            erp_id = _text(erp, "sap_erpaccountid") or ""
            org_id = _text(erp, "_sap_linkederporgid_value")
            rows = CustomerRows(
                account=account, erp_account=erp, org=self.orgs.get(org_id) if org_id else None
            )
            records.append(SyncRecord("general", ERP_ACCOUNTS, erp_id, erp, rows, erp_id))
        return records

    def details_of(self, erp_account_id: str) -> list[Row]:
        """The active details of one ERP account."""
        return [
            detail
            for detail in self.details
            if _text(detail, "_sap_erpaccountid_value") == erp_account_id
            and detail.get("statecode") != INACTIVE
        ]


class AccountReader:
    """Reads accounts' rows through one :class:`DataverseClient`.

    ``write_back_columns`` are read along with the data, so the flow can tell whether the
    outcome it would write back is already there (and not write, which would only echo back as
    another change).
    """

    def __init__(
        self,
        client: DataverseClient,
        *,
        write_back_columns: Sequence[str] = (),
        erp_account_write_back_columns: Sequence[str] = (),
        buffer: BatchBuffer | None = None,
        org_cache_seconds: float = 0.0,
    ) -> None:
        self.client = client
        self.detail_columns = _unique([*DETAIL_COLUMNS, *write_back_columns])
        self.erp_account_columns = _unique([*ERP_ACCOUNT_COLUMNS, *erp_account_write_back_columns])
        self.buffer = buffer
        self.orgs = OrgCache(org_cache_seconds)

    async def locate_account(self, change: DataverseChange) -> str | None:
        """The id of the account ``change`` belongs to; ``None`` when its row is gone."""
        if change.account_id is not None:
            return str(change.account_id)
        if change.table is ChangeTable.ACCOUNT:
            return str(change.id)
        entity_set = DETAILS if change.table is ChangeTable.ERP_ACCOUNT_DETAIL else ERP_ACCOUNTS
        try:
            row = await self.client.get(entity_set, change.id, select=["_sap_accountid_value"])
        except NotFoundError:
            return None
        account_id = _text(row, "_sap_accountid_value")
        if account_id is None:
            raise ValidationError(
                column(change.table.value, "_sap_accountid_value"),
                f"{change.table.value} {change.id} belongs to no account",
            )
        return account_id

    async def read(self, account_id: str) -> AccountSnapshot:
        """The account with its ERP accounts, details and their linked ERP organisations."""
        account_id = guid(account_id, "account_id")
        expand = [
            f"{ERP_ACCOUNTS_OF_ACCOUNT}($select={','.join(self.erp_account_columns)})",
            f"{DETAILS_OF_ACCOUNT}($select={','.join(self.detail_columns)})",
        ]
        try:
            account = await self._account(account_id, expand)
        except NotFoundError:
            return AccountSnapshot(account_id, None)
        erp_accounts = tuple(await self._expanded(account, ERP_ACCOUNTS_OF_ACCOUNT))
        details = tuple(await self._expanded(account, DETAILS_OF_ACCOUNT))
        org_ids = _unique(
            [
                value
                for row in (*erp_accounts, *details)
                if (value := _text(row, "_sap_linkederporgid_value")) is not None
            ]
        )
        return AccountSnapshot(
            account_id, account, erp_accounts, details, await self._orgs(org_ids)
        )

    async def _account(self, account_id: str, expand: list[str]) -> dict[str, Any]:
        """The account row, in a ``$batch`` shared with other messages when there is a buffer."""
        if self.buffer is None:
            return await self.client.get(
                ACCOUNTS, account_id, select=list(ACCOUNT_COLUMNS), expand=expand
            )
        operation = self.client.read_operation(
            ACCOUNTS, account_id, select=list(ACCOUNT_COLUMNS), expand=expand
        )
        (result,) = await self.buffer.submit([operation])
        if result.ok and result.row is not None:
            return result.row
        if isinstance(result.error, D365SapError):
            raise result.error
        raise TransientError(
            f"Dataverse GET accounts({account_id}) in $batch: "
            + ("not run, the batch stopped before it" if result.state == "not_run" else "no row")
        )

    async def _expanded(self, row: dict[str, Any], navigation: str) -> list[dict[str, Any]]:
        """An expanded collection, with the rows behind its next link when Dataverse cut it."""
        rows = _collection(row.pop(navigation, None))
        link = row.pop(f"{navigation}@odata.nextLink", None)
        if isinstance(link, str) and link:
            async for page in self.client.pages(navigation, start=link):
                rows += page.rows
        return rows

    async def _orgs(self, org_ids: Sequence[str]) -> dict[str, Row]:
        found, missing = self.orgs.lookup(org_ids)
        if not missing:
            return found
        condition = " or ".join(f"sap_linkederporgid eq {guid(org_id)}" for org_id in missing)
        async for page in self.client.pages(ORGS, select=list(ORG_COLUMNS), filter=condition):
            for row in page.rows:
                org_id = _text(row, "sap_linkederporgid")
                if org_id is not None:
                    found[org_id] = row
        self.orgs.remember(missing, found)
        return found


class OrgCache:
    """Linked ERP organisations read lately, kept for ``seconds`` (0: not kept).

    They are a handful of configuration rows every account points at; reading them for every
    message would double the flow's Dataverse requests. A changed organisation is seen once its
    entry expires; an organisation found missing is not remembered, so it is read again.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._rows: dict[str, tuple[float, Row]] = {}

    def lookup(self, org_ids: Sequence[str]) -> tuple[dict[str, Row], list[str]]:
        """The rows still fresh, and the ids to read."""
        now = time.monotonic()
        found: dict[str, Row] = {}
        missing: list[str] = []
        for org_id in org_ids:
            entry = self._rows.get(org_id)
            if entry is not None and entry[0] > now:
                found[org_id] = entry[1]
            else:
                missing.append(org_id)
        return found, missing

    def remember(self, org_ids: Sequence[str], rows: Mapping[str, Row]) -> None:
        """Keep the rows just read."""
        if self.seconds <= 0:
            return
        until = time.monotonic() + self.seconds
        for org_id in org_ids:
            row = rows.get(org_id)
            if row is not None:
                self._rows[org_id] = (until, row)


def _collection(value: object) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return []
