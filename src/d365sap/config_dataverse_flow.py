"""Settings of the native Dataverse → SAP customer flow, mounted as ``[dataverse_flow]``.

The flow reads an account's rows from Dataverse, sends them to S/4HANA Cloud or SAP ERP and
writes what happened back to the rows (``docs/native-customer-flow.md``). What it writes back,
and where, is Dynamics customising: the columns below default to those of SAP's Dynamics
solution (``sap_syncstatus`` and friends, as the Dataverse emulator has them) and can be pointed
at other columns, or switched off one by one with an empty name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_COLUMN = r"^([a-z_][a-z0-9_]{0,99})?$"


class SyncStatusValues(BaseModel):
    """Option values of the sync status choice column."""

    model_config = ConfigDict(extra="forbid")

    pending: int = 100_000_000
    synchronized: int = 100_000_001
    failed: int = 100_000_002
    discarded: int = 100_000_003

    @model_validator(mode="after")
    def _distinct(self) -> SyncStatusValues:
        values = [self.pending, self.synchronized, self.failed, self.discarded]
        if len(set(values)) != len(values):
            raise ValueError("the four status values must differ")
        return self


class WriteBackSettings(BaseModel):
    """Which columns of the ERP account detail (and ERP account) receive the outcome.

    An empty column name leaves that value out. The status and error columns exist on both the
    ERP account detail and the ERP account in SAP's solution; the customer number column only
    on the detail.
    """

    model_config = ConfigDict(extra="forbid")

    customer_number_column: str = Field(default="sap_sapcustomernumber", pattern=_COLUMN)
    status_column: str = Field(default="sap_syncstatus", pattern=_COLUMN)
    error_column: str = Field(default="sap_lasterror", pattern=_COLUMN)
    synced_on_column: str = Field(default="sap_lastsyncon", pattern=_COLUMN)
    message_id_column: str = Field(default="sap_lastmessageid", pattern=_COLUMN)
    error_max_length: int = Field(
        default=4000, ge=50, le=1_048_576, description="longer errors are cut to fit the column"
    )
    status_values: SyncStatusValues = Field(default_factory=SyncStatusValues)
    erp_account_number: bool = Field(
        default=True,
        description="also set sap_erpaccount.sap_number to a created customer's number "
        "when it is empty",
    )
    account_number: Literal["never", "when_empty", "always"] = Field(
        default="never",
        description="set account.accountnumber to the SAP customer number",
    )
    linger_seconds: float = Field(
        default=0.05,
        ge=0,
        le=5,
        description="how long a write-back waits for others to share its $batch request",
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=1000, description="operations per $batch; [dataverse] batch_size"
    )


class DataverseFlowSettings(BaseModel):
    """``[dataverse_flow]``: the native customer flow."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(
        default=None,
        description="run the flow in this service; unset: when [dataverse] is configured with a "
        "credential",
    )
    on_delete: Literal["flag_for_deletion", "ignore"] = Field(
        default="flag_for_deletion",
        description="a deleted ERP account detail (or account): set the deletion flag of its "
        "SAP sales areas, or only record that it was deleted",
    )
    write_back: WriteBackSettings = Field(default_factory=WriteBackSettings)
    batch_reads: bool = Field(
        default=True,
        description="read accounts in the $batch requests the write-backs use, shared with "
        "other messages running at the same time (false: one GET per message)",
    )
    org_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="how long linked ERP organisations read from Dataverse are reused "
        "(0: read with every message)",
    )
