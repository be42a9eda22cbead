"""Where the remediation core keeps its durable state: approvals, the audit log and graph checkpoints."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from agent.remediation.errors import StoreError

DATA_ENV = "SRE_AGENT_DATA"


def data_dir(create: bool = True) -> Path:
    """`$SRE_AGENT_DATA`, else `$XDG_DATA_HOME/sre-agent`, else `~/.local/share/sre-agent`, else `./.sre-agent`."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        path = Path(configured).expanduser()
    elif os.environ.get("XDG_DATA_HOME"):
        path = Path(os.environ["XDG_DATA_HOME"]) / "sre-agent"
    else:
        try:
            path = Path.home() / ".local" / "share" / "sre-agent"
        except RuntimeError:
            path = Path.cwd() / ".sre-agent"
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            source = f"${DATA_ENV}" if configured else "the default data dir"
            raise StoreError(f"cannot create data dir {path} ({source}): {exc.strerror}",
                             hints=[f"set {DATA_ENV} to a writable folder"]) from None
    return path


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old file or the new one, never a part: a temporary file in
    the same folder, synced, then renamed over it. Raises OSError."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
