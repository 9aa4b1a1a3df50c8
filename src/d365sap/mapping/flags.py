"""The one deletion-flag rule shared by the S/4 and the IDoc mappings (D2).

The package read ``deletionflag`` differently per target: S/4 treated anything but ``1`` as
"keep" while ECC treated anything but ``0`` (even an empty element) as "delete". Both now use
this function, so the same CRM value can never mean opposite things.
"""

from __future__ import annotations

from d365sap.errors import ValidationError

_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})


def parse_deletion_flag(value: str | None, field: str) -> bool | None:
    """``1``/``true`` → True, ``0``/``false``/blank → False, absent → None; else reject.

    Surrounding whitespace is ignored and the words are case-insensitive (Dynamics serialises
    .NET booleans as ``True``/``False``). Anything else (``N``, ``yes``, ``2``) is ambiguous
    and raises :class:`ValidationError` naming ``field`` rather than guessing.
    """
    if value is None:
        return None
    token = value.strip().lower()
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    raise ValidationError(field, f"deletion flag {value!r} not understood; use 1/true or 0/false")
