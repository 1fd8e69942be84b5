"""A canonical, deterministic encoding of state, for the state hash.

The state hash proves that a refused operation changed nothing and that a replay rebuilt
the same exchange, so it must see every piece of state, and two equal states must encode
alike in any process: no Python ``hash()`` order (string sets iterate in a per-process
order), no float, exact numbers.

:func:`canonical` turns a value into what ``msgspec`` encodes deterministically: a dict
becomes its ``[key, value]`` pairs sorted by key (keys may be ints or tuples, which JSON
objects cannot hold); lists, tuples and deques keep their order; a ``Fraction`` is
``[numerator, denominator]``. Records (msgspec structs, dataclasses) are encoded by
``msgspec`` itself, every field in definition order, so a field added later is hashed
without being named anywhere; inside them, sets and string-keyed dicts are sorted
(``order="deterministic"``), ``Decimal`` is its exact text, an enumeration its value, and
the few types ``msgspec`` does not know (read-only mappings, deques, fractions) pass
through :func:`canonical` again. A record or a list holding a dict keyed by anything but
strings makes the encoder fail loudly rather than hash in an arbitrary order. A plain object (the
ledger, the capacity book) is every attribute of it, by name, but those its class lists
in ``NOT_STATE`` (with the reason beside them).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from operator import itemgetter
from typing import Any

import msgspec

__all__ = ["canonical", "combine", "digest", "encoded_as_is"]

_first = itemgetter(0)

# How canonical() treats a value, by its type (decided once per type).
_AS_IS, _MAPPING, _FRACTION, _DEQUE, _OBJECT = range(5)
_ACTIONS: dict[type, int] = {}


def _action(kind: type) -> int:
    if kind in _NATIVE or issubclass(kind, _RECORDS) or dataclasses.is_dataclass(kind):
        action = _AS_IS
    elif issubclass(kind, Mapping):
        action = _MAPPING
    elif issubclass(kind, Fraction):
        action = _FRACTION
    elif issubclass(kind, deque):
        action = _DEQUE
    elif issubclass(kind, float):
        raise TypeError("no float in the state")
    elif hasattr(kind, "__dict__") and not hasattr(kind, "__slots__"):
        action = _OBJECT
    else:
        raise TypeError(f"cannot hash a {kind.__name__}")
    _ACTIONS[kind] = action
    return action


def encoded_as_is(kind: type) -> bool:
    """Does msgspec encode a value of type ``kind`` canonically as it is?"""
    action = _ACTIONS.get(kind)
    return (_action(kind) if action is None else action) == _AS_IS


def canonical(value: Any) -> Any:
    """``value`` as data whose deterministic msgspec encoding is canonical: mappings as
    sorted ``[key, value]`` pairs, plain objects as their attributes by name; the rest is
    left to msgspec (and :func:`_hook`), which encodes it exactly and in order."""
    kind = type(value)
    action = _ACTIONS.get(kind)
    if action is None:
        action = _action(kind)
    if action == _AS_IS:
        return value
    if action == _MAPPING:
        pairs = [(k, canonical(v)) for k, v in value.items()]
        try:
            pairs.sort(key=_first)
        except TypeError:  # keys of mixed types: order by their encoding
            pairs.sort(key=lambda kv: _encode(kv[0]))
        return pairs
    if action == _FRACTION:
        return [value.numerator, value.denominator]
    if action == _DEQUE:
        return list(value)
    # A plain object (the ledger, the capacity book...): its attributes by name.
    skip: frozenset[str] = getattr(kind, "NOT_STATE", frozenset())
    return [[name, canonical(v)] for name, v in sorted(vars(value).items()) if name not in skip]


#: Types msgspec encodes exactly and deterministically as they are (a list or tuple
#: holding a dict keyed by other than strings makes the encoder fail, loudly).
_NATIVE = frozenset({int, str, bool, type(None), list, tuple, set, frozenset, Decimal})
_RECORDS = (msgspec.Struct, Enum, tuple)


def _hook(value: Any) -> Any:
    converted = canonical(value)
    if converted is value:
        raise TypeError(f"cannot hash a {type(value).__name__}")
    return converted


_encoder = msgspec.json.Encoder(enc_hook=_hook, order="deterministic")


def _encode(value: Any) -> bytes:
    return _encoder.encode(value)


def digest(value: Any) -> str:
    """SHA-256 of the canonical encoding of ``value``."""
    return hashlib.sha256(_encode(canonical(value))).hexdigest()


def combine(components: Mapping[str, str]) -> str:
    """One digest over named component digests, in name order."""
    h = hashlib.sha256()
    for name in sorted(components):
        h.update(f"{name}={components[name]}\n".encode())
    return h.hexdigest()
