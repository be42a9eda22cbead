"""An approval binds to exactly what was approved: a digest of the proposal (action, target state, who may approve)
made when it is proposed, and a seal over that digest and the approver made when it is approved. The store checks
both before an execution is claimed; a record edited in between is refused and audited.

Keyed with `SRE_AGENT_APPROVAL_KEY` when it is set (an HMAC: only holders of the key can forge a record); without
it the digests still catch accidental and careless edits, not a determined writer of the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

KEY_ENV = "SRE_AGENT_APPROVAL_KEY"
_UNKEYED = b"sre-agent approvals (unkeyed)"


def _key() -> bytes:
    secret = os.environ.get(KEY_ENV, "")
    return secret.encode() if secret else _UNKEYED


def _mac(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(_key(), text.encode(), hashlib.sha256).hexdigest()


def proposal_digest(fields: dict[str, Any]) -> str:
    """The digest of everything an approver is shown and agrees to."""
    return _mac({"proposal": fields})


def approval_seal(digest: str, approver: str, decided_at: str) -> str:
    return _mac({"digest": digest, "approver": approver, "decided_at": decided_at})


def policy_digest(policy_json: str) -> str:
    """Which policy a proposal was made under, to name it in a refusal."""
    return hashlib.sha256(policy_json.encode()).hexdigest()[:16]


def same(expected: str | None, actual: str) -> bool:
    return expected is not None and hmac.compare_digest(expected, actual)
