"""Reading a YAML file a person hands in (a scenario, a policy, a kubeconfig, a mapping file) within bounds: at most
`Bounds.bytes`, UTF-8 text, nested at most `Bounds.depth` levels, at most `Bounds.nodes` nodes once aliases are
expanded, one document, no key given twice in one mapping. Anything else is one YAMLFileError naming the file and
the reason, never a RecursionError, a UnicodeDecodeError or a parse that runs out of memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class YAMLFileError(Exception):
    """The file cannot be used: the message starts with its name and says why, in one line."""


@dataclass(frozen=True)
class Bounds:
    bytes: int = 1_000_000
    depth: int = 24
    nodes: int = 100_000
    unique_keys: bool = True
    names: tuple[str, str, str] | None = None
    """The settings that define bytes, depth and nodes, named in messages so a reader can find them."""

    def limit(self, which: int, value: str, what: str) -> str:
        label = f" ({self.names[which]})" if self.names else f" for a {what}"
        return f"the limit of {value}{label}"


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__(mark)
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing to compose nodes nested beyond `max_depth` (PyYAML's composer recurses per level)
    and, with `unique_keys`, a key given twice in one mapping (instead of the last one silently winning)."""

    def __init__(self, stream: str, max_depth: int, unique_keys: bool) -> None:
        super().__init__(stream)
        self.depth, self.max_depth, self.unique_keys = 0, max_depth, unique_keys

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > self.max_depth:
                raise _TooDeep(self.peek_event().start_mark if self.check_event() else None)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value if self.unique_keys else ():
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                            f"found the key {key_node.value!r} twice",
                                                            key_node.start_mark)
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """Nodes under `node` with every alias expanded; raises ValueError on an alias to its own ancestor."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ValueError("an alias refers to a node that contains it (a recursive structure)")
    open_.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes, open_) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes, open_) + _expanded_size(v, sizes, open_) for k, v in node.value)
    open_.discard(key)
    sizes[key] = size
    return size


def one_line(text: str) -> str:
    """`text` with every character that is not printable (a line break, a control character) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def read_text(path: Path, *, what: str, name: str | None = None, bounds: Bounds = Bounds()) -> str:
    """The UTF-8 text of `path`, refused unread past `bounds.bytes`. Messages start with `name` (default: the
    path) and call the file `what` ("policy file")."""
    name = name or str(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(bounds.bytes + 1)
    except FileNotFoundError:
        raise YAMLFileError(f"{name}: {what} does not exist") from None
    except IsADirectoryError:
        raise YAMLFileError(f"{name}: is a folder, not a {what}") from None
    except OSError as exc:
        raise YAMLFileError(f"{name}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > bounds.bytes:
        raise YAMLFileError(f"{name}: larger than {bounds.limit(0, f'{bounds.bytes:,} bytes', what)}; not parsed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLFileError(f"{name}: not UTF-8 text (byte {exc.start}: {exc.reason}); a {what} is a YAML text "
                            "file") from None


def parse_text(text: str, *, what: str, name: str, bounds: Bounds = Bounds()) -> Any:
    """The one YAML document in `text` (None when it is empty), within `bounds`."""
    try:
        loader = _BoundedLoader(text, bounds.depth, bounds.unique_keys)
    except yaml.reader.ReaderError as exc:  # the reader checks every character first
        line = text.count("\n", 0, exc.position) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise YAMLFileError(f"{name}: not valid YAML at line {line}: the character {char} is not allowed in YAML "
                            "text") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, set())
        if size > bounds.nodes:
            raise YAMLFileError(f"{name}: {size:,} YAML nodes once aliases are expanded, above "
                                f"{bounds.limit(2, f'{bounds.nodes:,}', what)}")
        return loader.construct_document(node)
    except _TooDeep as exc:
        where = f" at line {exc.mark.line + 1}" if exc.mark else ""
        raise YAMLFileError(f"{name}: nested deeper than {bounds.limit(1, f'{bounds.depth} levels', what)}{where}") \
            from None
    except RecursionError:
        raise YAMLFileError(f"{name}: nested too deeply to read ({bounds.limit(1, str(bounds.depth), what)})") \
            from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" ({exc.context})" if exc.context else ""
        raise YAMLFileError(f"{name}: not valid YAML{where}: {one_line(f'{exc.problem}{context}')}") from None
    except yaml.YAMLError as exc:  # an unreadable stream
        raise YAMLFileError(f"{name}: not valid YAML: {' '.join(str(exc).split())[:300]}") from None
    except (ValueError, OverflowError) as exc:  # an integer of thousands of digits, a 13th month, a cycle
        raise YAMLFileError(f"{name}: not a usable YAML value: {' '.join(str(exc).split())[:300]}") from None
    finally:
        loader.dispose()


def read_yaml(path: Path, *, what: str, name: str | None = None, bounds: Bounds = Bounds()) -> Any:
    """The one YAML document in the file at `path`, within `bounds`."""
    name = name or str(path)
    return parse_text(read_text(path, what=what, name=name, bounds=bounds), what=what, name=name, bounds=bounds)
