"""API keys in the shell: making them, deriving what is stored, checking them.

What is stored (in the operation log, and its ``api_keys`` projection) is a public prefix
of at most 8 characters and a digest, from which no key can be recovered:

* a key the exchange generates is ``sk_`` and 43 URL-safe characters of 32 random bytes;
  its prefix shows 5 of them, leaving 228 random bits that a digest copied from the
  database cannot be searched for: its digest is a plain SHA-256 (``sha256$...``), which
  is cheap to check on every request;
* a key the operator chooses (``SUANLI_ADMIN_KEY``) may be short or guessable, so its
  digest is scrypt with a random salt (``scrypt$n$r$p$salt$hash``), which makes every
  guess cost about a tenth of a second. A key once verified is remembered in memory (by
  its SHA-256, never written anywhere), so only the first request pays; unknown keys
  that match an operator key's prefix are verified at most a few times a second per
  prefix, so guessing cannot burn the server's CPU.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

from exchange.keys import PREFIX_MAX, ApiKeyBook, ApiKeyRecord

__all__ = [
    "KEY_LENGTH_MAX",
    "OPERATOR_KEY_MIN",
    "KeyIndex",
    "generate_key",
    "generated_digest",
    "is_generated",
    "key_prefix",
    "operator_digest",
    "verify",
]

#: The longest key accepted at all (anything longer is refused before hashing).
KEY_LENGTH_MAX = 200
#: The shortest operator-supplied key.
OPERATOR_KEY_MIN = 16
_GENERATED = re.compile(r"sk_[A-Za-z0-9_-]{43}")
# scrypt's cost: 16 MiB of memory and about 0.1 s per guess here.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
#: scrypt verifications of unknown keys allowed per prefix and second.
SCRYPT_CHECKS_PER_S = 4.0
#: Verified keys remembered, by their SHA-256.
_VERIFIED_MAX = 100_000


def generate_key() -> str:
    """A new API key: 32 random bytes, URL-safe, behind a recognisable ``sk_``."""
    return "sk_" + secrets.token_urlsafe(32)


def is_generated(key: str) -> bool:
    return _GENERATED.fullmatch(key) is not None


def key_prefix(key: str) -> str:
    """The public part of a key, kept in clear to find its record."""
    return key[:PREFIX_MAX]


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generated_digest(key: str) -> str:
    return "sha256$" + _sha256(key)


def _scrypt(key: str, salt: bytes, n: int, r: int, p: int) -> str:
    return hashlib.scrypt(key.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 << 20, dklen=32).hex()


def operator_digest(key: str) -> str:
    salt = secrets.token_bytes(16)
    derived = _scrypt(key, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${derived}"


def verify(key: str, digest: str) -> bool:
    """Whether ``key`` is the key behind ``digest`` (compared in constant time)."""
    scheme, _, rest = digest.partition("$")
    if scheme == "sha256":
        return hmac.compare_digest(rest, _sha256(key))
    if scheme == "scrypt":
        n, r, p, salt, derived = rest.split("$")
        return hmac.compare_digest(
            derived, _scrypt(key, bytes.fromhex(salt), int(n), int(r), int(p))
        )
    return False


class KeyIndex:
    """Authentication against the core's keys (``book()`` gives the live ApiKeyBook)."""

    def __init__(
        self, book: Callable[[], ApiKeyBook], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._book = book
        self.clock = clock
        self._verified: dict[str, int] = {}  # SHA-256 of a key -> its key id
        self._budget: dict[str, tuple[float, float]] = {}  # prefix -> (tokens, when)

    def lookup(self, key: str) -> ApiKeyRecord | None:
        """The active key record of ``key``, or None."""
        if not key or len(key) > KEY_LENGTH_MAX:
            return None
        book = self._book()
        fast = _sha256(key)
        known = self._verified.get(fast)
        if known is not None:
            record = book.records.get(known)
            if record is not None and record.active:
                return record
            del self._verified[fast]
            return None
        prefix = key_prefix(key)
        found = None
        for record in book.active(prefix):
            scheme = record.digest.partition("$")[0]
            if scheme == "sha256":
                if hmac.compare_digest(record.digest[7:], fast):
                    found = record
            elif self._may_verify(prefix) and verify(key, record.digest):
                found = record
        if found is not None:
            self.remember(key, found.id)
        return found

    def remember(self, key: str, key_id: int) -> None:
        """``key`` is the key of record ``key_id`` (verified, or just registered)."""
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[_sha256(key)] = key_id

    def _may_verify(self, prefix: str) -> bool:
        """A token bucket per prefix for the costly verifications."""
        now = self.clock()
        tokens, last = self._budget.get(prefix, (SCRYPT_CHECKS_PER_S, now))
        tokens = min(SCRYPT_CHECKS_PER_S, tokens + (now - last) * SCRYPT_CHECKS_PER_S)
        if tokens < 1:
            self._budget[prefix] = (tokens, now)
            return False
        self._budget[prefix] = (tokens - 1, now)
        return True
