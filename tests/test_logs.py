"""Logging set-up: lines go to the standard error stream of the moment."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from d365sap.logs import configure_logging


def test_a_stream_replaced_and_closed_after_configuring_is_not_written_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captured = io.StringIO()  # e.g. a CLI runner's capture, closed when the command ends
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "json")
    captured.close()
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)

    structlog.get_logger("test").info("still logged", answer=42)

    assert '"event": "still logged"' in now.getvalue()
    assert '"answer": 42' in now.getvalue()
