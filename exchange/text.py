"""Clean text: no operation carrying a control character or a lone surrogate enters the log.

A control character (U+0000 to U+001F, U+007F to U+009F) in a name ends a C string, splits
a log line or a CSV row, or moves a terminal's cursor; a lone surrogate (U+D800 to U+DFFF)
is not a character at all and cannot be encoded as UTF-8, so a database driver or a JSON
encoder fails on it, possibly inside a group commit. The HTTP edge refuses both; the core
refuses them again for every operation, whatever path it came by, because it is the last
gate before the log.

One mechanism covers every operation: :func:`text_fields` lists, once per operation type,
the fields whose declared type can hold text (found from the msgspec type information, so
a string field added later is covered without being named anywhere), and
:func:`unclean_field` walks those fields, into lists, dicts and nested structs. The busiest
operation (``PlaceOrder``) has two such fields; a clean string costs one ``isprintable``
call in C, and only a string that is not printable (rare: a tab, a non-breaking space...)
is searched for the characters refused.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec import inspect

__all__ = ["UNCLEAN", "is_clean", "text_fields", "unclean_field"]

#: The characters no operation may carry.
UNCLEAN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def is_clean(text: str) -> bool:
    """No control character and no lone surrogate in ``text``."""
    # Every refused character is unprintable, so a printable string is clean at once.
    return text.isprintable() or UNCLEAN.search(text) is None


def _holds_text(kind: inspect.Type) -> bool:
    if isinstance(kind, inspect.StrType | inspect.AnyType):
        return True
    if isinstance(kind, inspect.UnionType):
        return any(_holds_text(t) for t in kind.types)
    if isinstance(kind, inspect.ListType | inspect.SetType | inspect.FrozenSetType):
        return _holds_text(kind.item_type)
    if isinstance(kind, inspect.VarTupleType):
        return _holds_text(kind.item_type)
    if isinstance(kind, inspect.TupleType):
        return any(_holds_text(t) for t in kind.item_types)
    if isinstance(kind, inspect.DictType):
        return _holds_text(kind.key_type) or _holds_text(kind.value_type)
    if isinstance(kind, inspect.StructType):
        return any(_holds_text(f.type) for f in kind.fields)
    # Integers, booleans, None, and enumerations and literals (whose values are the
    # type's own constants) hold no text from outside.
    return False


def text_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of ``cls`` whose declared type can hold a string, in field order."""
    info = inspect.type_info(cls)
    assert isinstance(info, inspect.StructType)
    return tuple(f.name for f in info.fields if _holds_text(f.type))


def unclean_field(op: msgspec.Struct, fields: tuple[str, ...]) -> str | None:
    """The first of ``fields`` of ``op`` holding unclean text (``name``, ``name[2]``,
    ``name.key``...), or None when all are clean."""
    for name in fields:
        value = getattr(op, name)
        if value.__class__ is str:
            if value.isprintable() or UNCLEAN.search(value) is None:
                continue
            return name
        if value is not None:
            where = _unclean_in(value, name)
            if where is not None:
                return where
    return None


def _unclean_in(value: Any, where: str) -> str | None:
    if isinstance(value, str):
        return None if is_clean(value) else where
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = _unclean_in(getattr(value, name), f"{where}.{name}")
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not is_clean(key):
                return where  # the key itself: never echoed
            found = _unclean_in(item, f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            found = _unclean_in(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None
