"""State that earlier versions kept as one JSON file per record (investigations, remediation runs), imported into
the database on first use: each readable file is inserted unless its record is there already (so an import cut
short goes on where it stopped, and a second process on the same files adds nothing), then moved to
`<folder>/migrated/`, kept as it was. A file that cannot be read is named in a warning and left where it is, never
deleted."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from agent.remediation.errors import RemediationError

MIGRATED = "migrated"
Record = TypeVar("Record")


def import_json_files(folder: Path, pattern: str, read: Callable[[Any], Record], insert: Callable[[Record], bool],
                      *, what: str, where: str, log: logging.Logger) -> int:
    """Import the files in `folder` matching `pattern`; returns how many were new. `read` turns a file's JSON into a
    record (raising on a bad one), `insert` adds it unless it is there (False)."""
    try:
        paths = sorted(path for path in folder.glob(pattern) if path.is_file())
    except OSError as exc:
        log.warning("cannot look for %s records to import in %s: %s", what, folder, exc.strerror or exc)
        return 0
    imported = 0
    for path in paths:
        try:
            imported += insert(read(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, ValidationError, KeyError, RemediationError) as exc:
            reason = f"not a {what} id: {exc}" if isinstance(exc, KeyError) else str(exc)[:200]
            log.warning("%s record %s cannot be read, so it was not imported into %s; it is left where it is (fix it, "
                        "or move it away to silence this): %s", what, path, where, reason)
            continue
        target = folder / MIGRATED / path.name
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)
        except FileNotFoundError:  # another process on the same folder moved it first
            pass
        except OSError as exc:
            log.warning("%s record %s is imported into %s but could not be moved to %s: %s (it is skipped as already "
                        "imported next time)", what, path, where, target, exc.strerror or exc)
    if imported:
        log.info("imported %d %s records from %s into %s; the files are in %s", imported, what, folder, where,
                 folder / MIGRATED)
    return imported
