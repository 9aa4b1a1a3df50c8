"""What sends an order: its ``statecode`` going from Active to Submitted (SEED-SPEC §6.1).

Only that transition sends an order; a submitted order saved again (a note, d365sap's own
write-back) must send nothing. Two triggers see it:

- **the webhook** (a step on ``salesorder`` Update, best with ``statecode`` as filtering
  attribute and a pre-image holding ``statecode``): :func:`submission_from_context` accepts a
  context whose new state is Submitted and whose old state was not (pre-image), or whose update
  set ``statecode`` itself when no pre-image is registered; a Create of an order already
  Submitted counts too;
- **the delta poll** (:class:`SubmittedOrderPoll`): change tracking of ``salesorders`` with
  ``statecode``; the state last seen of each order is remembered (``source_versions`` under
  ``sales_order:state``), so a changed order is handed on only when it is Submitted now and was
  not before. The first pass only records states (orders submitted before d365sap started are
  not sent), unless configured to hand them on.

Both hand the flow an :class:`OrderSubmitted` with a source id per order and transition. If
both triggers report one submission, the flow sees that the order went out already (outbox) and
does not send it twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import structlog
from sqlalchemy import Table, select

from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_feed import DataverseFeed, row_identity
from d365sap.engine.change_loader import ChangeBatch, ChangeLoader, LoadReport
from d365sap.engine.checkpoints import CheckpointStore
from d365sap.engine.db import insert_for
from d365sap.engine.intake import Intake
from d365sap.engine.store import MessageStore
from d365sap.engine.tables import SourceVersionRow
from d365sap.errors import ValidationError
from d365sap.flows.sales_order_messages import (
    FLOW_NAME,
    TRIGGER_CONTENT_TYPE,
    OrderSubmitted,
    encode,
    submitted_source_id,
)
from d365sap.mapping.sales_order_rows import SUBMITTED

log = structlog.get_logger("d365sap.triggers")

TABLE = "salesorder"
ENTITY_SET = "salesorders"
CHECKPOINT = f"dataverse:{ENTITY_SET}"
STATE_SOURCE = "sales_order:state"
VERSIONS = cast(Table, SourceVersionRow.__table__)


# the webhook ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSubmission:
    """A webhook context about an order: the submission, or why it is none."""

    order_id: uuid.UUID
    request_id: str
    correlation_id: str | None
    submitted: OrderSubmitted | None
    reason: str


def is_sales_order_context(document: object) -> bool:
    """Whether a webhook body is about an order (``PrimaryEntityName`` ``salesorder``)."""
    return isinstance(document, dict) and document.get("PrimaryEntityName") == TABLE


def _pairs(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ValidationError(field, "expected a list of {key, value} pairs")
    pairs: dict[str, Any] = {}
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValidationError(f"{field}[{index}]", "expected an object with a string key")
        pairs[item["key"]] = item.get("value")
    return pairs


def _attributes(entity: object, field: str) -> dict[str, Any]:
    if entity is None:
        return {}
    if not isinstance(entity, dict):
        raise ValidationError(field, "expected an Entity object")
    return _pairs(entity.get("Attributes"), f"{field}.Attributes")


def _state(attributes: Mapping[str, Any], field: str) -> int | None:
    """``statecode`` as an OptionSetValue (``{"Value": 1}``) or a bare number."""
    if "statecode" not in attributes:
        return None
    value = attributes["statecode"]
    if isinstance(value, dict):
        value = value.get("Value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field}.statecode", f"expected an option value, got {value!r}")
    return value


def _guid(value: object, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(field, f"expected a GUID, got {value!r}"[:200]) from None


def _version(attributes: Mapping[str, Any]) -> int | None:
    value = attributes.get("versionnumber")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def submission_from_context(
    document: Mapping[str, Any], *, request_id: str | None = None
) -> WebhookSubmission:
    """The submission a ``salesorder`` context reports, if it is one (see the module docstring)."""
    message = document.get("MessageName")
    if message not in ("Create", "Update", "SetState", "SetStateDynamicEntity"):
        raise ValidationError("MessageName", f"{message!r} is not handled for orders")
    order_id = _guid(document.get("PrimaryEntityId"), "PrimaryEntityId")
    body_request = document.get("RequestId")
    if body_request is None and request_id is None:
        raise ValidationError("RequestId", "the context has no RequestId (nor x-request-id)")
    request = str(_guid(body_request if body_request is not None else request_id, "RequestId"))
    inputs = _pairs(document.get("InputParameters"), "InputParameters")
    target = _attributes(inputs.get("Target"), "InputParameters.Target")
    posts = _pairs(document.get("PostEntityImages"), "PostEntityImages")
    pres = _pairs(document.get("PreEntityImages"), "PreEntityImages")
    post = {}
    for name, image in posts.items():
        post.update(_attributes(image, f"PostEntityImages.{name}"))
    pre = {}
    for name, image in pres.items():
        pre.update(_attributes(image, f"PreEntityImages.{name}"))
    new_state = _state(target, "InputParameters.Target")
    if new_state is None:
        new_state = _state(post, "PostEntityImages")
    old_state = _state(pre, "PreEntityImages")
    correlation = document.get("CorrelationId")

    def answer(submitted: OrderSubmitted | None, reason: str) -> WebhookSubmission:
        return WebhookSubmission(
            order_id=order_id,
            request_id=request,
            correlation_id=str(correlation) if isinstance(correlation, str) else None,
            submitted=submitted,
            reason=reason,
        )

    if new_state != SUBMITTED:
        return answer(None, f"the order is not submitted (statecode {new_state})")
    if old_state == SUBMITTED:
        return answer(None, "the order was submitted already: a re-save sends nothing")
    if message != "Create" and old_state is None and "statecode" not in target:
        return answer(None, "the update did not set statecode: a re-save sends nothing")
    submitted = OrderSubmitted(
        trigger="webhook",
        order_id=order_id,
        version=_version(post) or _version(target),
        request_id=request,
    )
    return answer(submitted, "submitted")


def webhook_source_id(submission: WebhookSubmission) -> str:
    """One message per transition: the row version when the context has it, else the request."""
    submitted = submission.submitted
    marker = submitted.version if submitted is not None and submitted.version else None
    return submitted_source_id(submission.order_id, marker or submission.request_id)


# the delta poll ------------------------------------------------------------------------------


class OrderStates:
    """The ``statecode`` last seen per order (``source_versions``, ``sales_order:state``)."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store
        dialect = store.engine.dialect.name
        self._insert = insert_for(dialect)

    def get_many(self, order_ids: Sequence[str]) -> dict[str, str]:
        """The states on record for ``order_ids``."""
        if not order_ids:
            return {}
        with self.store.sessions() as session:
            rows = session.execute(
                select(VERSIONS.c.row_id, VERSIONS.c.version).where(
                    VERSIONS.c.source == STATE_SOURCE, VERSIONS.c.row_id.in_(list(order_ids))
                )
            ).all()
        return {str(row_id): str(version) for row_id, version in rows}

    def put_many(self, states: Mapping[str, str]) -> None:
        """Record states (replacing older ones) in one transaction."""
        if not states:
            return
        now = datetime.now(UTC)
        statement = self._insert(VERSIONS)
        statement = statement.on_conflict_do_update(
            index_elements=[VERSIONS.c.source, VERSIONS.c.row_id],
            set_={"version": statement.excluded.version, "seen_at": statement.excluded.seen_at},
        )
        rows = [
            {"source": STATE_SOURCE, "row_id": k, "version": v, "pass_id": None, "seen_at": now}
            for k, v in states.items()
        ]
        with self.store.write() as session:
            session.execute(statement, rows)


class SubmittedOrderPoll:
    """Change tracking of ``salesorders``, handing on orders that became Submitted."""

    def __init__(
        self,
        *,
        intake: Intake,
        checkpoints: CheckpointStore,
        client: DataverseClient,
        initial: Literal["baseline", "submit"] = "baseline",
        rebaseline_cap: int = 10_000,
        page_size: int | None = None,
    ) -> None:
        self.intake = intake
        self.initial = initial
        self.name = CHECKPOINT
        self.states = OrderStates(checkpoints.store)
        feed = DataverseFeed(
            client, ENTITY_SET, select=["salesorderid", "statecode"], page_size=page_size
        )
        self.identity = row_identity("salesorderid")
        self.loader = ChangeLoader(
            checkpoints, self.name, feed, self.identity, rebaseline_cap=rebaseline_cap
        )
        self.submitted = 0
        self.duplicates = 0

    async def run(self) -> LoadReport:
        """Read from the checkpoint to the end of the current pass, submitting as it goes."""
        return await self.loader.run(self._handle)

    async def _handle(self, batch: ChangeBatch) -> None:
        seen: dict[str, tuple[str, str]] = {}
        for row in batch.upserts:
            row_id, version = self.identity(row)
            state = row.get("statecode")
            seen[row_id] = (str(state) if isinstance(state, int) else "-", version)
        store = self.states.store
        known = await store.call(lambda: self.states.get_many(list(seen)))
        hand_on = batch.phase != "initial" or self.initial == "submit"
        submissions: list[tuple[OrderSubmitted, str]] = []
        for row_id, (state, version) in seen.items():
            became = state == str(SUBMITTED) and known.get(row_id) != str(SUBMITTED)
            if hand_on and became:
                submitted = OrderSubmitted(
                    trigger="delta",
                    order_id=uuid.UUID(row_id),
                    version=int(version) if version.isdigit() else None,
                )
                submissions.append((submitted, submitted_source_id(row_id, version)))
        await self._submit(submissions)
        states = {row_id: state for row_id, (state, _) in seen.items()}
        await store.call(lambda: self.states.put_many(states))

    async def _submit(self, submissions: list[tuple[OrderSubmitted, str]]) -> None:
        if not submissions:
            return
        correlation_id = uuid.uuid4().hex
        results = await asyncio.gather(
            *(
                self.intake.submit(
                    FLOW_NAME,
                    encode(submitted),
                    content_type=TRIGGER_CONTENT_TYPE,
                    correlation_id=correlation_id,
                    source_id=source_id,
                )
                for submitted, source_id in submissions
            )
        )
        duplicates = sum(1 for result in results if result.duplicate)
        self.submitted += len(results) - duplicates
        self.duplicates += duplicates
        log.info("submitted orders handed on", submitted=len(results) - duplicates)
