"""Reading scenario files: an id, folder or file resolved to a scenario.yaml, `extends` merged in, and the result
validated, with errors that name the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, overload

import yaml
from pydantic import ValidationError

from tools.replay.scenario import Scenario

S = TypeVar("S", bound="Scenario")


class ScenarioError(Exception):
    """A scenario file that cannot be used; the message names the file, the field and the reason."""


SCENARIO_FILE = "scenario.yaml"


def builtin_scenarios_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "evals" / "scenarios"


def resolve_scenario_path(id_or_path: str | Path) -> Path:
    candidate = Path(id_or_path)
    if candidate.is_dir():
        candidate = candidate / SCENARIO_FILE
    if candidate.is_file():
        return candidate
    builtin = builtin_scenarios_dir() / str(id_or_path) / SCENARIO_FILE
    if builtin.is_file():
        return builtin
    known = sorted(p.parent.name for p in builtin_scenarios_dir().glob(f"*/{SCENARIO_FILE}"))
    raise ScenarioError(
        f"no scenario {str(id_or_path)!r}: not a folder with {SCENARIO_FILE}, a file, or a built-in id. "
        f"Built-in ids: {', '.join(known) or 'none'}"
    )


def merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings merge by key, lists of named mappings merge by `name`, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    named = lambda items: all(isinstance(i, dict) and "name" in i for i in items)  # noqa: E731
    if isinstance(base, list) and isinstance(override, list) and override and named(base) and named(override):
        key = lambda item: (item["name"], item.get("namespace"))  # noqa: E731
        by_key = {key(item): item for item in base}
        for item in override:
            by_key[key(item)] = merge(by_key[key(item)], item) if key(item) in by_key else item
        return list(by_key.values())
    return override


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ScenarioError(f"{path}: 'extends' loops back to itself")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{seen[-1] if seen else path}: extends {path}, which does not exist") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    return merge(_read_yaml((path.parent / str(parent)).resolve(), (*seen, path)), raw)


@overload
def load_scenario(id_or_path: str | Path) -> Scenario: ...


@overload
def load_scenario(id_or_path: str | Path, model: type[S]) -> S: ...


def load_scenario(id_or_path: str | Path, model: type[Scenario] = Scenario) -> Scenario:
    """Load and validate a scenario file as `model` (evals pass one that also checks `expect`)."""
    path = resolve_scenario_path(id_or_path)
    raw = _read_yaml(path.resolve())
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {exc.error_count()} problem(s)"]
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"  - {where}: {error['msg']}")
        raise ScenarioError("\n".join(lines)) from None


def list_scenarios(root: Path | None = None) -> list[Path]:
    base = root or builtin_scenarios_dir()
    return sorted(p.parent for p in base.glob(f"*/{SCENARIO_FILE}"))
