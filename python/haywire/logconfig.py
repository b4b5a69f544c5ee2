"""Python logging in the supervisor and the workers: ``--log-config`` (read as uvicorn
reads it: a ``.json`` or ``.yaml``/``.yml`` file is a ``logging.config.dictConfig``
dictionary, anything else an ini ``fileConfig``), else one plain line per record on
stderr; ``--log-level``, when given, sets the root logger's level over either."""

from __future__ import annotations

import json
import logging
import logging.config
import sys

DEFAULT_LEVEL = "info"


def configure(level: str | None, path: str | None) -> None:
    """Configures logging as above; raises what reading or applying `path` raised."""
    if path is None:
        logging.basicConfig(level=(level or DEFAULT_LEVEL).upper(),
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        return
    if path.endswith(".json"):
        with open(path) as f:
            logging.config.dictConfig(json.load(f))
    elif path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise RuntimeError("a YAML log config needs PyYAML (pip install pyyaml)") from None
        with open(path) as f:
            logging.config.dictConfig(yaml.safe_load(f))
    else:
        # fileConfig reads a missing file as an empty one: say so instead.
        with open(path):
            pass
        logging.config.fileConfig(path, disable_existing_loggers=False)
    if level is not None:
        logging.getLogger().setLevel(level.upper())
