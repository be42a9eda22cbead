"""The JSON records of `<data>/investigations/`, from before the records moved into the database, imported on first
use: each readable file is inserted unless its id is there already (so an import cut short goes on where it
stopped, and a second server on the same files adds nothing), then moved to `investigations/migrated/`, kept as it
was. A file that cannot be read is named in a warning and left where it is, never deleted."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agent.server.records import InvestigationRecord

if TYPE_CHECKING:
    from agent.server.records import InvestigationStore

log = logging.getLogger(__name__)
MIGRATED = "migrated"


def import_legacy(store: InvestigationStore, folder: Path) -> int:
    """Import the records in `folder` into `store`; returns how many were new to it."""
    try:
        paths = sorted(path for path in folder.glob("inv-*.json") if path.is_file())
    except OSError as exc:
        log.warning("cannot look for investigation records to import in %s: %s", folder, exc.strerror or exc)
        return 0
    imported = 0
    for path in paths:
        try:
            record = InvestigationRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
            imported += store.import_record(record)
        except (OSError, ValueError, ValidationError, KeyError) as exc:
            reason = f"not an investigation id: {exc}" if isinstance(exc, KeyError) else str(exc)[:200]
            log.warning("investigation record %s cannot be read, so it was not imported into %s; it is left where it "
                        "is (fix it, or move it away to silence this): %s", path, store.where, reason)
            continue
        target = folder / MIGRATED / path.name
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)
        except FileNotFoundError:  # another server on the same folder moved it first
            pass
        except OSError as exc:
            log.warning("investigation record %s is imported into %s but could not be moved to %s: %s (it is "
                        "skipped as already imported next time)", path, store.where, target, exc.strerror or exc)
    if imported:
        log.info("imported %d investigation records from %s into %s; the files are in %s", imported, folder,
                 store.where, folder / MIGRATED)
    return imported
