"""What every settings section shares: no unknown keys, and secrets never read from the file.

Kept apart from ``config`` so the modules of single sections (``config_sales_orders`` and the
like), which ``config`` mounts, use the same secret handling instead of a copy of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Section(BaseModel):
    """A settings section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SecretRef(Section):
    """Where a secret comes from: a value from the environment, a named variable, or a file."""

    password: SecretStr | None = Field(default=None, description="only from the environment")
    password_env: str | None = Field(default=None, description="name of the variable to read")
    password_file: Path | None = Field(default=None, description="file holding the secret")

    def secret(self) -> str | None:
        """Resolve the secret; ``None`` when none is configured."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_env:
            return os.environ.get(self.password_env)
        if self.password_file:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        return None

    def secret_problems(self, where: str) -> list[tuple[str, str]]:
        """Problems resolving the secret, named by field."""
        if self.password_env and self.password_env not in os.environ:
            return [
                (f"{where}.password_env", f"environment variable {self.password_env} is not set")
            ]
        if self.password_file and not self.password_file.is_file():
            return [(f"{where}.password_file", f"file {self.password_file} does not exist")]
        return []
