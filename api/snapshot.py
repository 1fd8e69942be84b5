"""Snapshots of the core: its whole state at one log position, so a start-up replays only
the log after it.

A snapshot file is a fixed magic line, a header (JSON, sorted keys) and a payload: the
:class:`~exchange.core.ExchangeCore` pickled. The header holds the format version, the log
sequence number and the log's chain link at that row, the state hash, a fingerprint of the
code that wrote it (the ``exchange`` and ``pricing`` sources, Python's version and the
libraries whose objects the state holds), the payload's length and its SHA-256, and then
the header's own SHA-256 follows it. A file is written to a temporary name, fsynced,
renamed into place and its directory fsynced, so a crash leaves either the whole file or
no file under its final name.

The payload is deterministic: the same state gives the same bytes in any process, whatever
its ``PYTHONHASHSEED``. Dicts keep their insertion order (which the log determines) and
pickle writes them in it; sets, whose order follows the hash of their elements, are
written sorted. Loading uses an unpickler that builds only classes of the ``exchange`` and
``pricing`` packages and a short list of standard and library types, so a file cannot
make the process run anything else; and a snapshot is loaded only when its fingerprint
is the running code's, since pickle rebuilds objects by the attributes their classes had
when it was written.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import logging
import os
import pickle
import platform
import re
import signal
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec
import sortedcontainers

from exchange.core import ExchangeCore
from exchange.limits import CoreLimits

if TYPE_CHECKING:
    from api.db.store import Store

__all__ = [
    "FORMAT_VERSION",
    "Header",
    "SnapshotPolicy",
    "SnapshotUnreadable",
    "code_fingerprint",
    "default_directory",
    "dumps",
    "list_snapshots",
    "loads",
    "newest_usable",
    "open_file",
    "prune",
    "read",
    "read_header",
    "write",
    "write_file",
    "write_in_child",
]

log = logging.getLogger("suanli.snapshot")

#: 2: settled instruments retire their orders and contracts (deliveries by number).
FORMAT_VERSION = 2
MAGIC = b"suanli snapshot\n"
_LENGTH = struct.Struct(">I")
_PROTOCOL = 5
_NAME = re.compile(r"^snapshot-(\d{12})\.snap$")
#: Prefix of a snapshot being written (never read; removed when found at start-up).
TEMP_PREFIX = ".snapshot-"

#: Packages whose classes a snapshot may build, by module prefix.
_ALLOWED_PREFIXES = ("exchange.", "pricing.", "sortedcontainers.")
#: Other classes and functions a snapshot may name.
_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("collections", "deque"),
        ("collections", "defaultdict"),
        ("collections", "OrderedDict"),
        ("fractions", "Fraction"),
        ("decimal", "Decimal"),
        ("api.snapshot", "_mapping_proxy"),
    }
)


class SnapshotUnreadable(ValueError):
    """A snapshot file that cannot be used: the message says why."""


@dataclass(frozen=True)
class Header:
    version: int
    seq: int
    chain: str  # the log's chain link at ``seq``, hex
    state_hash: str
    fingerprint: str
    payload_length: int
    payload_sha256: str

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True, separators=(",", ":")).encode()


@cache
def code_fingerprint() -> str:
    """A digest of what decides how a pickled core reads back: the sources of the
    ``exchange`` and ``pricing`` packages (and their data files), Python's version and
    the versions of the libraries whose objects the state holds. Any change to those
    makes older snapshots unusable (the log is replayed instead): never wrong, at worst
    slower."""
    h = hashlib.sha256()
    h.update(f"python {sys.version_info[0]}.{sys.version_info[1]} ".encode())
    h.update(f"{platform.python_implementation()} pickle {_PROTOCOL} ".encode())
    h.update(f"sortedcontainers {sortedcontainers.__version__} ".encode())
    h.update(f"msgspec {msgspec.__version__} format {FORMAT_VERSION}\n".encode())
    root = Path(__file__).resolve().parent.parent
    for package in ("exchange", "pricing"):
        base = root / package
        for path in sorted(base.rglob("*")):
            if not path.is_file() or "__pycache__" in path.as_posix() or path.suffix == ".pyc":
                continue
            h.update(path.relative_to(root).as_posix().encode() + b"\x00")
            data = path.read_bytes()
            h.update(_LENGTH.pack(len(data) & 0xFFFFFFFF) + data)
    return h.hexdigest()


def _mapping_proxy(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _sort_key(value: Any) -> bytes:
    # Elements that do not compare (mixed types, plain enumerations) sort by their own
    # deterministic pickle.
    return dumps_value(value)


class _Pickler(pickle.Pickler):
    """Pickles sets in sorted order and read-only mappings as what they wrap.

    The C pickler writes a set in its iteration order, which for strings and enumerations
    follows the per-process hash seed; sets are therefore handed over as persistent ids:
    their elements sorted, with an index so that a set reached twice is one set again."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=_PROTOCOL)
        self._sets: dict[int, int] = {}
        self._keep: list[Any] = []  # the sets seen, alive so that their ids stay unique

    def persistent_id(self, obj: Any) -> Any:
        kind = obj.__class__
        if kind is not set and kind is not frozenset:
            return None
        index = self._sets.get(id(obj))
        if index is not None:
            return ("ref", index)
        index = self._sets[id(obj)] = len(self._sets)
        self._keep.append(obj)
        try:
            elements = sorted(obj)
        except TypeError:
            elements = sorted(obj, key=_sort_key)
        return ("set" if kind is set else "frozenset", index, tuple(elements))

    def reducer_override(self, obj: Any) -> Any:
        if obj.__class__ is MappingProxyType:
            return _mapping_proxy, (dict(obj),)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self._sets: list[Any] = []

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith(_ALLOWED_PREFIXES) and "." not in name:
            # Only a class defined in those packages: not a function, nor a module or a
            # class the module imported from elsewhere (``logging``, say).
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__.startswith(_ALLOWED_PREFIXES):
                return found
        raise pickle.UnpicklingError(f"a snapshot may not build {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError("bad persistent id")
        if pid[0] == "ref" and len(pid) == 2:
            return self._sets[pid[1]]
        if pid[0] in ("set", "frozenset") and len(pid) == 3 and pid[1] == len(self._sets):
            value = set(pid[2]) if pid[0] == "set" else frozenset(pid[2])
            self._sets.append(value)
            return value
        raise pickle.UnpicklingError("bad persistent id")


def dumps_value(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer).dump(value)
    return buffer.getvalue()


def dumps(core: ExchangeCore) -> bytes:
    """The core's state (:meth:`ExchangeCore.state`: every part of it, nothing of its
    settings or its change journal) as deterministic bytes; taken between operations."""
    return dumps_value(core.state())


def loads(payload: bytes) -> ExchangeCore:
    """A core from :func:`dumps`' bytes, as a replay would hold it: no per-account bounds
    and ``admitting`` off (the shell sets both once the log's tail is replayed), an empty
    change journal."""
    # Millions of objects are made and none is garbage: collections meanwhile would only
    # rescan them again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        state = _Unpickler(io.BytesIO(payload)).load()
    finally:
        if enabled:
            gc.enable()
    if state.__class__ is not dict or any(v.__class__ is not dict for v in state.values()):
        raise pickle.UnpicklingError("the payload is not the state of an exchange core")
    core = ExchangeCore(limits=CoreLimits.unbounded())
    try:
        core.restore(state)
    except ValueError as exc:
        raise pickle.UnpicklingError(str(exc)) from exc
    core.admitting = False
    return core


def file_name(seq: int) -> str:
    return f"snapshot-{seq:012d}.snap"


def encode(core: ExchangeCore, seq: int, chain: bytes, state_hash: str | None = None) -> bytes:
    """The whole file of a snapshot of ``core`` at log position ``seq``."""
    payload = dumps(core)
    header = Header(
        version=FORMAT_VERSION,
        seq=seq,
        chain=chain.hex(),
        state_hash=state_hash if state_hash is not None else core.state_hash(),
        fingerprint=code_fingerprint(),
        payload_length=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
    ).encode()
    return b"".join(
        (MAGIC, _LENGTH.pack(len(header)), header, hashlib.sha256(header).digest(), payload)
    )


def write(
    directory: Path, core: ExchangeCore, seq: int, chain: bytes, state_hash: str | None = None
) -> Path:
    """Write a snapshot of ``core`` at ``seq`` durably; returns its path. Takes no lock
    and logs nothing: a forked child may call it."""
    return write_file(directory, seq, encode(core, seq, chain, state_hash))


def write_file(directory: Path, seq: int, data: bytes) -> Path:
    """Write the snapshot file ``data`` (:func:`encode`) of operation ``seq`` durably: a
    temporary file, fsync, rename into place, fsync of the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / file_name(seq)
    temp = directory / f"{TEMP_PREFIX}{seq:012d}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view[: 1 << 24])
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, final)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def _split(data: bytes) -> tuple[Header, bytes]:
    """The header and payload of a file's bytes, both checked, or SnapshotUnreadable."""
    if not data.startswith(MAGIC):
        raise SnapshotUnreadable("not a suanli snapshot")
    at = len(MAGIC)
    if len(data) < at + _LENGTH.size:
        raise SnapshotUnreadable("truncated header")
    (length,) = _LENGTH.unpack_from(data, at)
    at += _LENGTH.size
    raw, digest = data[at : at + length], data[at + length : at + length + 32]
    if len(raw) != length or hashlib.sha256(raw).digest() != digest:
        raise SnapshotUnreadable("its header's checksum does not match")
    try:
        fields = json.loads(raw)
        header = Header(**fields)
    except (ValueError, TypeError) as exc:
        raise SnapshotUnreadable(f"its header does not decode ({exc})") from exc
    if header.version != FORMAT_VERSION:
        raise SnapshotUnreadable(f"format version {header.version}, not {FORMAT_VERSION}")
    payload = data[at + length + 32 :]
    if len(payload) != header.payload_length:
        raise SnapshotUnreadable(
            f"its payload is {len(payload)} bytes, the header says {header.payload_length}"
        )
    if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
        raise SnapshotUnreadable("its payload's checksum does not match")
    return header, payload


def read_header(path: Path) -> Header:
    """The header of the snapshot at ``path``, its header and payload checksums checked."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotUnreadable(f"cannot be read ({exc.strerror})") from exc
    return _split(data)[0]


def open_file(path: Path) -> tuple[Header, bytes]:
    """The header and payload of the snapshot at ``path``: checksums, format and the code
    fingerprint checked, or :class:`SnapshotUnreadable` saying why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotUnreadable(f"cannot be read ({exc.strerror})") from exc
    header, payload = _split(data)
    if header.fingerprint != code_fingerprint():
        raise SnapshotUnreadable("written by another version of suanli (its code differs)")
    match = _NAME.match(path.name)
    if match is not None and int(match.group(1)) != header.seq:
        raise SnapshotUnreadable(
            f"its name says operation {int(match.group(1))}, its header {header.seq}"
        )
    return header, payload


def load_payload(payload: bytes) -> ExchangeCore:
    """:func:`loads`, any failure of it a :class:`SnapshotUnreadable`."""
    try:
        return loads(payload)
    except Exception as exc:  # any failure of the payload is the file's, not the process's
        raise SnapshotUnreadable(f"its payload does not load ({exc!r})") from exc


def read(path: Path) -> tuple[Header, ExchangeCore]:
    """The header and core of the snapshot at ``path`` (see :func:`open_file`)."""
    header, payload = open_file(path)
    return header, load_payload(payload)


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """The snapshot files in ``directory`` as (seq, path), the newest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def temporary_files(directory: Path) -> Iterator[Path]:
    """Files a snapshot write left behind (a crash during it)."""
    if directory.is_dir():
        for path in directory.iterdir():
            if path.name.startswith(TEMP_PREFIX):
                yield path


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots; returns the deleted paths."""
    deleted = []
    for _, path in list_snapshots(directory)[max(1, keep) :]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted.append(path)
    return deleted


@dataclass(frozen=True)
class SnapshotPolicy:
    """Where snapshots go and when the writer takes one."""

    directory: Path
    every_operations: int = 100_000
    every_seconds: float = 3_600.0
    keep: int = 3


def default_directory(configured: str | None, sqlite_file: str | None) -> Path | None:
    """The snapshot directory: the configured one, else ``<file>.snapshots`` beside a
    SQLite database file; None where there is neither (PostgreSQL without a setting, or
    SQLite in memory): no snapshots then."""
    if configured:
        return Path(configured)
    if sqlite_file:
        path = Path(sqlite_file)
        return path.with_name(path.name + ".snapshots")
    return None


def newest_usable(
    store: Store, directory: Path, *, projected: int | None = None, clean: bool = False
) -> tuple[Header, ExchangeCore] | None:
    """The newest snapshot in ``directory`` that start-up may begin from, loaded, or None.

    A snapshot is skipped, with a warning saying why, when it is unreadable (checksum,
    format, another version's code), when the log does not reach its operation, when the
    log's row at its operation is not the one it was taken at (the chain links differ),
    or when it is past ``projected`` (the projection watermark: the operations in between
    must be replayed to be projected). With ``clean`` (the writer, which holds the
    writer lock), files a crash left half-written are removed."""
    for path in list(temporary_files(directory)) if clean else ():
        with contextlib.suppress(OSError):
            path.unlink()
            log.warning("removed %s, a snapshot a crash left half-written", path.name)
    last = None
    for _, path in list_snapshots(directory):
        try:
            header, payload = open_file(path)
            if last is None:
                last = store.last_seq()
            why = None
            if header.seq > last:
                why = f"it is at operation {header.seq} but the log ends at {last}"
            elif projected is not None and header.seq > projected:
                why = (
                    f"it is at operation {header.seq}, past the projections (at {projected}): "
                    "the operations in between are replayed to be projected"
                )
            elif store.chain_at(header.seq) != bytes.fromhex(header.chain):
                why = f"the log's row {header.seq} is not the one it was taken at"
            if why is not None:
                log.warning("snapshot %s skipped: %s", path.name, why)
                continue
            core = load_payload(payload)
        except SnapshotUnreadable as exc:
            log.warning("snapshot %s skipped: %s", path.name, exc)
            continue
        return header, core
    return None


def write_in_child(directory: Path, core: ExchangeCore, seq: int, chain: bytes) -> NoReturn:
    """The body of a forked child: write a snapshot, then leave with ``os._exit`` (0 once
    it is durable). The parent may have held locks in other threads when it forked, so
    the child logs nothing and touches no database connection; it closes every inherited
    descriptor but the standard ones, and writes a failure to its standard error."""
    code = 1
    try:
        gc.disable()  # a collection would only touch (and copy) the parent's pages
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)  # the parent's event loop's, not this process's
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(number, signal.SIG_DFL)
        os.closerange(3, _max_fd())
        write(directory, core, seq, chain)
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            os.write(2, f"suanli: the snapshot at operation {seq} failed: {exc!r}\n".encode())
    finally:
        os._exit(code)


def _max_fd() -> int:
    try:
        return min(int(os.sysconf("SC_OPEN_MAX")), 1 << 20)
    except (ValueError, OSError):
        return 1 << 16
