"""Type aliases shared across packages."""

from __future__ import annotations

from typing import Any, TypeAlias

JSONValue: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]
Headers: TypeAlias = dict[str, str]
