from __future__ import annotations

import os

import pytest

from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.toolkit import Sources, Toolbox

# Tests never reach a real service: dummy credentials, no proxies to the outside.
for variable in ("DD_API_KEY", "DD_APP_KEY", "OPENAI_API_KEY"):
    os.environ[variable] = "test-dummy"
os.environ.pop("OPENAI_BASE_URL", None)


@pytest.fixture
def toolbox() -> Toolbox:
    return default_toolbox()


@pytest.fixture
def incident5() -> Sources:
    return replay_sources("incident-5")


@pytest.fixture
def healthy5() -> Sources:
    return replay_sources("incident-5-healthy")
