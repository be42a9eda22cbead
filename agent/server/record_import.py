"""The JSON records of `<data>/investigations/`, from before the records moved into the database, imported on first
use (`agent/remediation/json_import.py`: inserted unless there already, then moved to `investigations/migrated/`;
a file that cannot be read is left where it is)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from agent.remediation.json_import import import_json_files
from agent.server.records import InvestigationRecord

if TYPE_CHECKING:
    from agent.server.records import InvestigationStore

log = logging.getLogger(__name__)


def import_legacy(store: InvestigationStore, folder: Path) -> int:
    """Import the records in `folder` into `store`; returns how many were new to it."""
    return import_json_files(folder, "inv-*.json", InvestigationRecord.model_validate, store.import_record,
                             what="investigation", where=store.where, log=log)
