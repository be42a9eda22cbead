"""Recorded HTTP of the live backends (real wire formats), replayed by vcrpy. Playback never records and never
reaches the network; a test fails if its cassette has unplayed interactions or if a secret was stored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import vcr
import yaml
from vcr.cassette import Cassette

CASSETTES = Path(__file__).parent
SECRET_HEADERS = ["DD-API-KEY", "DD-APPLICATION-KEY", "authorization"]


def recorder(source: str) -> vcr.VCR:
    return vcr.VCR(cassette_library_dir=str(CASSETTES / source), record_mode="none", filter_headers=SECRET_HEADERS,
                   match_on=["method", "scheme", "host", "port", "path", "query", "body"],
                   decode_compressed_response=True)


@contextmanager
def played(source: str, name: str) -> Iterator[Cassette]:
    """Replay `<source>/<name>.yaml`; afterwards every interaction must have been played exactly once."""
    with recorder(source).use_cassette(f"{name}.yaml") as cassette:
        yield cassette
    unplayed = [cassette.requests[i].uri for i in range(len(cassette)) if not cassette.play_counts[i]]
    assert not unplayed, f"{name}: unplayed interactions {unplayed}"


def stored_secrets(source: str, secrets: list[str]) -> list[str]:
    """Secret headers or values found in a source's cassettes, as `file: what`."""
    found = []
    for path in sorted((CASSETTES / source).glob("*.yaml")):
        text = path.read_text()
        found += [f"{path.name}: value {secret[:3]}…" for secret in secrets if secret and secret in text]
        for interaction in yaml.safe_load(text)["interactions"]:
            names = {name.lower() for name in interaction["request"]["headers"]}
            found += [f"{path.name}: header {h}" for h in SECRET_HEADERS if h.lower() in names]
    return found
