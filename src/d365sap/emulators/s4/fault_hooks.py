"""The two injected faults the S/4 emulator carries out inside its own logic.

An expired CSRF token and an entity changed by someone else between read and write cannot be
faked by an answer from the outside: the client's next step (fetch a new token, read the entity
again) must meet the state the fault left behind. So the fault middleware only marks the request
and the gate calls these hooks at the point where S/4 would notice.
"""

from __future__ import annotations

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.hosting import ODataHost
from d365sap.emulators.s4.state import EmulatorState
from d365sap.emulators.s4.uri import resolve, split_path

CONCURRENT_USER = "BATCH_USER"
"""Who "changed" the entity when an ETag change is injected (shows in LastChangedByUser)."""


def expire_csrf_token(state: EmulatorState, session_id: str | None) -> None:
    """The caller's token expires now: this request gets 403 and the next fetch a new token."""
    state.csrf.expire(session_id)


def change_etag(host: ODataHost, path: str) -> bool:
    """Re-stamp the entity at ``path`` (below ``host``'s root) as another user's change.

    Its ETag moves, so the client's ``If-Match`` no longer matches and S/4 answers 412. Returns
    False when the path does not address one existing entity (nothing to change then).
    """
    try:
        segments = split_path(path)
        if not segments:
            return False
        with host.store.lock:
            target = resolve(host.model, host.store, segments)
            if not target.single or target.key is None or target.prop is not None:
                return False
            record = host.store.get(target.entity_set.name, target.key)
            if record is None:
                return False
            values = dict(record.values)
            host.rules.prepare_update(target.entity_set, values, CONCURRENT_USER)
            host.store.put(target.entity_set, values)
            return True
    except errors.ODataError:
        return False
