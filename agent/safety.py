"""Instruction-like text inside tool results (log lines, annotations, labels, event messages, names) is data. It
is detected in code so every verdict reports it, whatever the model did with it; it never reaches a shell or an
action, and facts that size or target an action come from structured fields, not from text.

Detection reads the shape of a sentence, not a list of known attacks: text is folded to plain Latin letters
(homoglyphs, full-width forms, zero-width characters), split into clauses, and flagged when a clause addresses a
reader (you, the agent, the assistant, the on-call bot) or gives an order: starts with an imperative operation
verb, or names an operation on the cluster with a target and a count, or holds a shell or kubectl command.
Machine-written log lines report what happened (past tense, gerunds, status words); they do not give orders.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_NOTES = 3
MIN_LENGTH = 16
# Cyrillic and Greek letters that render like Latin ones (Unicode's confusables, the letters attackers use).
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "һ": "h",
    "к": "k", "м": "m", "т": "t", "в": "b", "н": "h", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H",
    "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "α": "a", "ο": "o", "ε": "e", "ι": "i", "κ": "k", "ν": "v",
    "ρ": "p", "τ": "t", "υ": "u", "Α": "A", "Β": "B", "Ε": "E", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Χ": "X",
})
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# Operations an agent could be talked into, and verbs that steer what it says.
OPERATIONS = ("scale", "delete", "remove", "drain", "cordon", "restart", "rollback", "roll", "undo", "patch",
              "apply", "exec", "run", "execute", "kill", "stop", "terminate", "set", "change", "increase",
              "decrease", "evict", "purge", "flush", "disable", "enable", "uninstall", "wipe", "shutdown", "reboot")
STEERING = ("ignore", "disregard", "forget", "override", "bypass", "pretend")  # orders about the reader's rules
STEERING_ADDRESSED = ("report", "respond", "reply", "answer", "say", "tell", "mark", "classify", "conclude",
                      "recommend", "propose", "declare", "treat", "consider", "do", "make", "ensure")
_ADDRESS = re.compile(r"\b(you|your|yourself|assistant|agent|ai|llm|model|bot|copilot|operator|sre[- ]?bot|"
                      r"automation|auto-?remediat\w*|whoever reads this|reader)\b", re.IGNORECASE)
_IMPERATIVE = re.compile(rf"^(please |now |immediately |urgently |first |then |also |just )*"
                         rf"({'|'.join(OPERATIONS + STEERING + STEERING_ADDRESSED)})\s", re.IGNORECASE)
_STEERING = re.compile(rf"\b({'|'.join(STEERING)})\s+((all|any|the|your|these|those|previous|prior|above|"
                       r"earlier|other|this|that)\s+)+\w+", re.IGNORECASE)
_PLEASE_OPERATE = re.compile(rf"\b(please|kindly)\s+({'|'.join(OPERATIONS)})\s+\w", re.IGNORECASE)
# Commands recorded as history (a change-cause annotation) are data; destructive ones are flagged anywhere.
_COMMAND = re.compile(r"\b(kubectl|oc)\s+(delete|drain|cordon|exec|replace\s+--force)\b|\brm\s+-\w*r|"
                      r"\bcurl\b[^|]*\|\s*(ba)?sh|\b(DROP|TRUNCATE)\s+(TABLE|DATABASE)\b", re.IGNORECASE)
_FRAMING = " \t\"'`*>#[](){}<>"  # quotes, brackets and markup around a clause
_REPORTED = re.compile(r"\b(successful(ly)?|succeeded|failed|completed|done|ok)\W*$", re.IGNORECASE)
_OPERATION_ON = re.compile(rf"\b({'|'.join(OPERATIONS)})\b[^.;]{{0,60}}\b(to|=|--replicas)\s*\d+|"
                           rf"\b({'|'.join(OPERATIONS)})\b[^.;]{{0,40}}\b(namespace|deployment|cluster|replicas|"
                           rf"pods?|nodes?|statefulset|queue)s?\b", re.IGNORECASE)
_CLAUSES = re.compile(r"(?<=[.!?;:,])\s+|\s+[-–—]\s+|\n+|\s*\|\s*")
_PLEASE = re.compile(rf"\b(please|kindly|you should|you must|you need to|make sure to|be sure to)\s+"
                     rf"({'|'.join(OPERATIONS + STEERING + STEERING_ADDRESSED)})\s", re.IGNORECASE)


def plain(text: str) -> str:
    """Fold look-alike characters to plain Latin: full-width forms, homoglyphs, accents, invisible characters."""
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_HOMOGLYPHS)
    stripped = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in stripped if not unicodedata.combining(c))


def instruction_like(text: str) -> bool:
    """Whether some clause of `text` addresses a reader or gives an order about the system."""
    if len(text) < MIN_LENGTH:
        return False
    flat = plain(text)
    if " " not in flat.strip():  # a slug (label value, queue or image name): its separators are the spaces
        flat = re.sub(r"[-_./:=]+", " ", flat)
    if _COMMAND.search(flat):
        return True
    clauses = [c.strip(_FRAMING) for c in _CLAUSES.split(flat)]
    clauses = [c for c in clauses if c and not _REPORTED.search(c)]  # "delete Pod x … successful" reports
    addressed = any(_ADDRESS.search(c) for c in clauses)  # whom the text speaks to holds for all of it
    for clause in clauses:
        ordered = bool(_IMPERATIVE.match(clause) or _PLEASE.search(clause))
        operation = bool(_OPERATION_ON.search(clause))
        if _STEERING.search(clause) or _PLEASE_OPERATE.search(clause) or (ordered and (addressed or operation)) \
                or (addressed and operation):
            return True
    return False


def _strings(value: Any, key: str = "") -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        found = [s for k, item in value.items() for s in _strings(item, k)]
        return found + [k for k in value if isinstance(k, str) and len(k) >= MIN_LENGTH]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item, key)]
    return []


def find_injections(data: dict[str, Any]) -> list[str]:
    """Distinct instruction-like texts found anywhere in a tool result (values and keys)."""
    found: list[str] = []
    for text in _strings(data):
        if instruction_like(text) and text[:160] not in found:
            found.append(text[:160])
    return found[:MAX_NOTES]
