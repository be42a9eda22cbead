"""Reading scenario files: an id, folder or file resolved to a scenario.yaml, `extends` merged in, and the result
validated, with errors that name the file, the field and the reason, one line each.

A file is untrusted input: it is refused before parsing when it is too large or not UTF-8 text, while parsing when
it nests too deeply or expands into too many nodes (aliases), and after merging when a list, a mapping or a string
is too long (the limits are `tools.replay.limits`).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import ValidationError

from tools.replay.limits import MAX_DEPTH, MAX_EXTENDS, MAX_FILE_BYTES, MAX_ITEMS, MAX_NODES, MAX_TEXT
from tools.replay.scenario import Scenario
from tools.yamlfile import Bounds, YAMLFileError, one_line, parse_text, read_text

S = TypeVar("S", bound="Scenario")


class ScenarioError(Exception):
    """A scenario file that cannot be used; the message names the file, the field and the reason."""


SCENARIO_FILE = "scenario.yaml"
MAX_PROBLEMS = 20  # lines of one error; the rest are counted
NAMED_LISTS = {"deployments": ("name", "namespace"), "queues": ("name", "vhost"), "flows": ("name",)}


def builtin_scenarios_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "evals" / "scenarios"


def resolve_scenario_path(id_or_path: str | Path) -> Path:
    candidate = Path(id_or_path)
    try:
        if candidate.is_dir():
            candidate = candidate / SCENARIO_FILE
        if candidate.is_file():
            return candidate
        builtin = builtin_scenarios_dir() / str(id_or_path) / SCENARIO_FILE
        if builtin.is_file():
            return builtin
    except (OSError, ValueError):  # a name too long for a path, a NUL byte
        pass
    known = sorted(p.parent.name for p in builtin_scenarios_dir().glob(f"*/{SCENARIO_FILE}"))
    raise ScenarioError(
        f"no scenario {str(id_or_path)[:200]!r}: not a folder with {SCENARIO_FILE}, a file, or a built-in id. "
        f"Built-in ids: {', '.join(known) or 'none'}"
    )


def _key(item: dict[str, Any]) -> tuple[Any, ...]:
    return item["name"], item.get("namespace"), item.get("vhost")


def merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings merge by key, lists of named mappings merge by `name` (and `namespace`, `vhost`),
    anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    named = lambda items: all(isinstance(i, dict) and "name" in i for i in items)  # noqa: E731
    if isinstance(base, list) and isinstance(override, list) and override and named(base) and named(override):
        try:
            by_key = {_key(item): item for item in base}
            for item in override:
                by_key[_key(item)] = merge(by_key[_key(item)], item) if _key(item) in by_key else item
        except TypeError:  # an unhashable name: left for validation to report
            return override
        return list(by_key.values())
    return override


SCENARIO_BOUNDS = Bounds(bytes=MAX_FILE_BYTES, depth=MAX_DEPTH, nodes=MAX_NODES,
                         names=("MAX_FILE_BYTES", "MAX_DEPTH", "MAX_NODES"))


def _read_text(path: Path, referrer: Path | None) -> str:
    origin = f"{referrer}: extends {path}, which" if referrer else f"{path}:"
    try:
        if not path.exists():
            raise ScenarioError(f"{origin} does not exist")
        if not path.is_file():
            raise ScenarioError(f"{origin} is not a regular file")
        return read_text(path, what="scenario", bounds=SCENARIO_BOUNDS)
    except OSError as exc:
        raise ScenarioError(f"{origin} cannot be read: {exc.strerror or exc}") from None
    except YAMLFileError as exc:
        raise ScenarioError(str(exc)) from None


def _parse(path: Path, text: str) -> Any:
    try:
        return parse_text(text, what="scenario", name=str(path), bounds=SCENARIO_BOUNDS)
    except YAMLFileError as exc:
        raise ScenarioError(str(exc)) from None


def _named_duplicates(path: Path, raw: dict[str, Any]) -> None:
    """Two entries of one list with the same key in one file would be merged into one silently: refuse them."""
    world = raw.get("world")
    if not isinstance(world, dict):
        return
    for field, keys in NAMED_LISTS.items():
        items = world.get(field)
        if not isinstance(items, list):
            continue
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            if not isinstance(item, dict) or "name" not in item:
                continue
            key = "/".join(str(item[k]) for k in keys if item.get(k) is not None)
            if key in seen:
                raise ScenarioError(f"{path}: world.{field}.{index}: {_shown(key)} is defined twice (also "
                                    f"world.{field}.{seen[key]})")
            seen[key] = index


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file at `path` with the files it extends merged under it; `seen`: the files extending it."""
    if path.resolve() in (p.resolve() for p in seen):
        raise ScenarioError(f"{path}: 'extends' loops back to itself")
    if len(seen) >= MAX_EXTENDS:
        raise ScenarioError(f"{seen[0]}: 'extends' chains more than {MAX_EXTENDS} files (MAX_EXTENDS)")
    raw = _parse(path, _read_text(path, seen[-1] if seen else None))
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    _named_duplicates(path, raw)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError(f"{path}: extends: expected the path of a YAML file, got {_shown(parent)}")
    try:
        target = (path.parent / parent).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ScenarioError(f"{path}: extends: not a usable path ({exc})") from None
    return merge(_read_yaml(target, (*seen, path)), raw)


def _part(part: Any) -> str:
    """One step of a field path: a key as written, or quoted when it is not plain text."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text and "." not in text else repr(text)


def _shown(value: Any) -> str:
    """A value as an error shows it: short, on one line."""
    if isinstance(value, dict):
        return f"a mapping of {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}… ({len(text):,} characters)"


def _oversized(value: Any, where: str, found: list[str]) -> None:
    """Every list or mapping longer than MAX_ITEMS and string longer than MAX_TEXT under `value`."""
    if len(found) >= MAX_PROBLEMS:
        return
    if isinstance(value, str) and len(value) > MAX_TEXT:
        found.append(f"{where}: a string of {len(value):,} characters is above the limit of {MAX_TEXT:,} (MAX_TEXT)")
    elif isinstance(value, dict | list):
        if len(value) > MAX_ITEMS:
            found.append(f"{where}: {_shown(value)} is above the limit of {MAX_ITEMS:,} entries (MAX_ITEMS)")
            return
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in pairs:
            path = f"{where}.{_part(key)}" if where else _part(key)
            if isinstance(key, str):
                _oversized(key, f"{path} (the key)", found)
            _oversized(item, path, found)


def _field_path(raw: Any, loc: tuple[int | str, ...]) -> str:
    """`loc` as a path in the file, without the parts that name a union's member (`count`, `list[…]`)."""
    parts: list[str] = []
    node, lost = raw, False
    for part in loc:
        if lost:  # below a field the file does not have (missing, or made by a validator): as pydantic names it
            parts.append(_part(part))
            continue
        inside = part in node if isinstance(node, dict) else (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if inside:
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part.isidentifier():
            lost = True
        else:
            continue  # a union member's label
        parts.append(_part(part))
    return ".".join(parts)


def _problems(exc: ValidationError, raw: Any) -> list[str]:
    lines = []
    for error in exc.errors():
        where = _field_path(raw, error["loc"])
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] not in ("limit", "value_error", "assertion_error", "missing") and "input" in error:
            message += f" (got {_shown(error['input'])})"
        lines.append(f"{where}: {message}" if where else message)
    return lines


@overload
def load_scenario(id_or_path: str | Path) -> Scenario: ...


@overload
def load_scenario(id_or_path: str | Path, model: type[S]) -> S: ...


def load_scenario(id_or_path: str | Path, model: type[Scenario] = Scenario) -> Scenario:
    """Load and validate a scenario file as `model` (evals pass one that also checks `expect`)."""
    path = resolve_scenario_path(id_or_path)
    raw = _read_yaml(path)
    problems: list[str] = []
    _oversized(raw, "", problems)
    if not problems:
        if path.name == SCENARIO_FILE and isinstance(raw.get("id"), str) and raw["id"] != path.resolve().parent.name:
            problems.append(f"id: {raw['id']!r} differs from its folder's name {path.resolve().parent.name!r}; "
                            "they must be equal")
        try:
            scenario = model.model_validate(raw)
        except ValidationError as exc:
            problems += _problems(exc, raw)
        except RecursionError:
            problems.append(f"nested too deeply to validate (MAX_DEPTH is {MAX_DEPTH})")
    if problems:
        shown = [f"{path}: {one_line(line)}" for line in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"{path}: … and {len(problems) - MAX_PROBLEMS} more problems")
        raise ScenarioError("\n".join(shown))
    return scenario


def list_scenarios(root: Path | None = None) -> list[Path]:
    base = root or builtin_scenarios_dir()
    return sorted(p.parent for p in base.glob(f"*/{SCENARIO_FILE}"))
