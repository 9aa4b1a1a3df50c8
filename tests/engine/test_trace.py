"""The trace of one attempt: payload copies only when payload logging is on."""

from __future__ import annotations

import json

from d365sap.engine.trace import Trace


def test_a_json_copy_is_kept_only_with_payload_logging() -> None:
    quiet, logging = Trace(), Trace(log_payloads=True)
    body = {"Customer": "17100001", "Name": "Müller"}

    quiet.snapshot_json("mapped.create", body)
    logging.snapshot_json("mapped.create", body)

    assert quiet.snapshots == []
    (kept,) = logging.snapshots
    assert (kept.stage, kept.content_type) == ("mapped.create", "application/json")
    assert json.loads(kept.body) == body
    assert "Müller" in kept.body  # as written, not \\u-escaped
