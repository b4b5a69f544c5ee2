"""Config values the supervisor hands its workers outside their command lines.

A worker's command line is readable by every user of the host (``ps``, /proc/PID/
cmdline); its environment only by its own user. Secrets (a key's password) therefore
travel in the environment, and the worker takes them out of it before importing the
app, so neither the app nor the processes it starts inherit them.
"""

from __future__ import annotations

import json
import os
from typing import Any

# The config keys never put on a command line.
SECRET_KEYS = ("tls.key_password",)
VARIABLE = "HAYWIRE_SECRET_OVERRIDES"


def hand_over(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str] | None]:
    """`overrides` without the secrets, and the environment for a worker that carries
    them (None when there are none: the worker inherits the supervisor's)."""
    public = {key: value for key, value in overrides.items() if key not in SECRET_KEYS}
    secrets = {key: overrides[key] for key in SECRET_KEYS if key in overrides}
    if not secrets:
        return public, None
    return public, dict(os.environ, **{VARIABLE: json.dumps(secrets)})


def take_over(overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` with the secrets the supervisor handed over, now removed from this
    process's environment."""
    secrets = os.environ.pop(VARIABLE, None)
    return dict(overrides, **json.loads(secrets)) if secrets else overrides
