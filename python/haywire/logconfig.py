"""Python logging in the supervisor and the workers: ``--log-config`` (read as uvicorn
reads it: a ``.json`` or ``.yaml``/``.yml`` file is a ``logging.config.dictConfig``
dictionary, anything else an ini ``fileConfig``), else one plain line per record on
stderr, its level name in color with ``--use-colors``; ``--log-level``, when given, sets
the root logger's level over either."""

from __future__ import annotations

import json
import logging
import logging.config
import sys

DEFAULT_LEVEL = "info"
DEFAULT_FORMAT = "%(levelname)s %(name)s: %(message)s"

# uvicorn's colors for level names (ANSI SGR codes).
LEVEL_COLORS = {"DEBUG": "36", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "91"}


class ColorFormatter(logging.Formatter):
    """The default line with the level name in its color."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        color = LEVEL_COLORS.get(record.levelname)
        if color is None:
            return super().formatMessage(record)
        colored = logging.makeLogRecord(record.__dict__)
        colored.levelname = f"\x1b[{color}m{record.levelname}\x1b[0m"
        return super().formatMessage(colored)


def configure(level: str | None, path: str | None, colors: bool = False) -> None:
    """Configures logging as above; raises what reading or applying `path` raised."""
    if path is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter((ColorFormatter if colors else logging.Formatter)(DEFAULT_FORMAT))
        logging.basicConfig(level=(level or DEFAULT_LEVEL).upper(), handlers=[handler])
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
