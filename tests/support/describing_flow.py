"""A stand-in for the native customer flow that only describes messages, for trigger tests.

The triggers' job ends when a message is stored and queued; tests of that part need the flow's
``describe`` (business key, queue) but must not depend on Dataverse or SAP answering a run.
"""

from __future__ import annotations

from d365sap.engine.trace import Trace
from d365sap.engine.types import Description, FlowOutput
from d365sap.flows.dataverse_messages import CONTENT_TYPE, FLOW_NAME, QUEUE, decode_change


class DescribingFlow:
    """Describes :class:`DataverseChange` payloads like the flow; running one is a test failure."""

    name = FLOW_NAME
    content_types = (CONTENT_TYPE,)

    def describe(self, payload: bytes) -> Description:
        change = decode_change(payload)
        return Description(route=None, business_key=change.business_key(), queue=QUEUE)

    async def run(self, payload: bytes, trace: Trace, *, message_id: str) -> FlowOutput:
        raise AssertionError("a trigger test must not run the flow")
