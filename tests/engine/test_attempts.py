"""Starting attempts of several messages in one transaction (``engine.attempts.begin_many``)."""

from __future__ import annotations

from d365sap.engine.attempts import begin_in, begin_many
from d365sap.engine.store import MessageStore
from d365sap.engine.views import DONE, PROCESSING, SUPERSEDED
from engine.test_store import accept, settle


def test_begin_many_starts_each_message_as_begin_in_would(store: MessageStore) -> None:
    first = accept(store, b"<a/>", key="K1")
    second = accept(store, b"<b/>", key="K2")
    with store.fast() as session:
        assert not isinstance(begin_in(session, second), str)  # already in its first attempt
    with store.fast() as session:
        started = begin_many(session, [second, first])
    assert list(started) == [second, first]  # in the order asked
    attempts = {mid: result[1] for mid, result in started.items() if not isinstance(result, str)}
    assert attempts == {first: 1, second: 2}
    for message_id in (first, second):
        view = store.get(message_id)
        assert view is not None and view.status == PROCESSING
        assert view.attempts == attempts[message_id]


def test_begin_many_reports_final_superseded_and_unknown_messages(store: MessageStore) -> None:
    older = accept(store, b"<v1/>", key="K1")
    newer = accept(store, b"<v2/>", key="K1")
    settle(store, newer, DONE)
    fresh = accept(store, b"<v1/>", key="K2")
    with store.fast() as session:
        started = begin_many(session, [older, newer, "no-such-message", fresh])
    assert started[older] == SUPERSEDED
    assert started[newer] == "final"
    assert started["no-such-message"] == "final"
    assert not isinstance(started[fresh], str)
    view = store.get(older)
    assert view is not None and view.status == SUPERSEDED and newer in (view.error or "")


def test_begin_many_of_nothing(store: MessageStore) -> None:
    with store.fast() as session:
        assert begin_many(session, []) == {}
