"""Double-entry, append-only ledger in integer minor units, with two-phase holds.

Every movement of money is a :class:`Transfer` from one ledger account (debited) to
another (credited) of one amount, so each transfer balances by construction and the sum
of all balances is always zero. Participants own four accounts (``available``, ``held``,
``escrow``, ``collateral``); the exchange owns ``fees`` and ``external``, the mirror of
money that entered (deposits) or left (withdrawals).

A hold reserves cash for an order: it moves money from ``available`` to ``held`` and is
then, piece by piece, *captured* (to escrow or collateral, as fills happen) or *released*
(back to available), and finally *closed* exactly once: ``posted`` if anything was
captured, ``voided`` if nothing was. A closed hold refuses every further operation.

Invariants, checked after every operation (:meth:`Ledger.check`):

* each transfer has a positive amount and two different accounts;
* the sum of all balances is zero, and the sum of all non-external balances equals
  deposits minus withdrawals;
* no participant account is negative (in particular ``available``);
* every hold's amount = pending + captured + released; closed holds have nothing pending;
  each participant's ``held`` balance equals the pending amount of its open holds.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from exchange.ids import Timestamp
from exchange.invariants import InvariantViolation, check
from exchange.refusals import Refusal
from exchange.units import format_money

__all__ = [
    "EXCHANGE",
    "AccountKind",
    "Hold",
    "HoldState",
    "Ledger",
    "LedgerError",
    "Transfer",
    "TransferCode",
]

#: The owner id of the exchange's own accounts.
EXCHANGE = 0


class AccountKind(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    ESCROW = "escrow"
    COLLATERAL = "collateral"
    FEES = "fees"  # exchange only
    EXTERNAL = "external"  # exchange only: minus the money inside the exchange


_PARTICIPANT_KINDS = (
    AccountKind.AVAILABLE,
    AccountKind.HELD,
    AccountKind.ESCROW,
    AccountKind.COLLATERAL,
)


class TransferCode(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    HOLD = "hold"
    RELEASE = "release"
    CAPTURE = "capture"
    PAYMENT = "payment"
    FEE = "fee"
    REFUND = "refund"
    PENALTY = "penalty"
    COLLATERAL_RELEASE = "collateral_release"


class HoldState(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


LedgerKey = tuple[int, AccountKind]


class Transfer(msgspec.Struct, frozen=True, gc=False):
    id: int
    ts: int
    debit_owner: int
    debit_kind: AccountKind
    credit_owner: int
    credit_kind: AccountKind
    amount: int
    code: TransferCode
    ref: str


class Hold(msgspec.Struct):
    id: int
    owner: int
    amount: int
    ref: str
    pending: int
    captured: int = 0
    released: int = 0
    state: HoldState = HoldState.PENDING


class LedgerError(Exception):
    """A ledger operation that cannot be done; ``code`` is stable (API error code)."""

    def __init__(self, code: Refusal, /, **fields: object) -> None:
        super().__init__(code.message(**fields))
        self.code = code
        self.fields = fields


class Ledger:
    """All balances, holds and transfers of one exchange in one currency."""

    #: Not state (see exchange.statehash): the transfers of the last operations, made
    #: and already applied to the balances, waiting for the shell to take them.
    NOT_STATE: ClassVar[frozenset[str]] = frozenset({"journal"})

    def __init__(self, currency: str = "CNY") -> None:
        self.currency = currency
        self.balances: dict[LedgerKey, int] = {}
        self.holds: dict[int, Hold] = {}
        self.deposited = 0
        self.withdrawn = 0
        self.next_transfer_id = 1
        self.next_hold_id = 1
        #: Transfers not yet taken by the shell (``drain``); the ledger keeps no history.
        self.journal: list[Transfer] = []

    # ------------------------------------------------------------------ reading
    def balance(self, owner: int, kind: AccountKind) -> int:
        return self.balances.get((owner, kind), 0)

    def available(self, owner: int) -> int:
        return self.balances.get((owner, AccountKind.AVAILABLE), 0)

    def drain(self) -> list[Transfer]:
        """Hand the transfers made since the last call to the shell (for persistence)."""
        out, self.journal = self.journal, []
        return out

    # ------------------------------------------------------------------ movements
    def _move(
        self,
        ts: Timestamp,
        debit: LedgerKey,
        credit: LedgerKey,
        amount: int,
        code: TransferCode,
        ref: str,
    ) -> Transfer:
        # The checks are written out (not check()): every money movement passes here.
        if amount <= 0:
            raise InvariantViolation(f"transfer of non-positive amount {amount}")
        if debit == credit:
            raise InvariantViolation("transfer to the same account")
        balances = self.balances
        new_debit = balances.get(debit, 0) - amount
        if new_debit < 0 and debit[1] is not AccountKind.EXTERNAL:
            raise InvariantViolation(f"{debit} would go negative by a {code} of {amount}")
        balances[debit] = new_debit
        balances[credit] = balances.get(credit, 0) + amount
        t = Transfer(
            self.next_transfer_id, ts, debit[0], debit[1], credit[0], credit[1], amount, code, ref
        )
        self.next_transfer_id += 1
        self.journal.append(t)
        return t

    def deposit(self, ts: Timestamp, owner: int, amount: int, ref: str = "") -> Transfer:
        if amount <= 0:
            raise LedgerError(Refusal.INVALID_AMOUNT, subject="a deposit")
        t = self._move(
            ts,
            (EXCHANGE, AccountKind.EXTERNAL),
            (owner, AccountKind.AVAILABLE),
            amount,
            TransferCode.DEPOSIT,
            ref,
        )
        self.deposited += amount
        return t

    def withdraw(self, ts: Timestamp, owner: int, amount: int, ref: str = "") -> Transfer:
        if amount <= 0:
            raise LedgerError(Refusal.INVALID_AMOUNT, subject="a withdrawal")
        available = self.available(owner)
        if available < amount:
            raise LedgerError(
                Refusal.INSUFFICIENT_FUNDS,
                available=format_money(available),
                what="withdrawal",
                amount=format_money(amount),
            )
        t = self._move(
            ts,
            (owner, AccountKind.AVAILABLE),
            (EXCHANGE, AccountKind.EXTERNAL),
            amount,
            TransferCode.WITHDRAWAL,
            ref,
        )
        self.withdrawn += amount
        return t

    def move(
        self,
        ts: Timestamp,
        debit: LedgerKey,
        credit: LedgerKey,
        amount: int,
        code: TransferCode,
        ref: str,
    ) -> Transfer | None:
        """An internal movement (settlement legs); zero amounts are skipped, not recorded."""
        if amount == 0:
            return None
        return self._move(ts, debit, credit, amount, code, ref)

    # ------------------------------------------------------------------ holds
    def can_hold(self, owner: int, amount: int) -> bool:
        return self.available(owner) >= amount

    def open_hold(self, ts: Timestamp, owner: int, amount: int, ref: str) -> Hold:
        """Reserve ``amount`` of ``owner``'s available cash; the caller checked funds."""
        if amount < 0:
            raise LedgerError(Refusal.INVALID_AMOUNT, subject="a hold")
        available = self.available(owner)
        if available < amount:
            raise LedgerError(
                Refusal.INSUFFICIENT_FUNDS,
                available=format_money(available),
                what="hold",
                amount=format_money(amount),
            )
        hold = Hold(self.next_hold_id, owner, amount, ref, pending=amount)
        self.next_hold_id += 1
        self.holds[hold.id] = hold
        if amount:
            self._move(
                ts,
                (owner, AccountKind.AVAILABLE),
                (owner, AccountKind.HELD),
                amount,
                TransferCode.HOLD,
                ref,
            )
        return hold

    def increase_hold(self, ts: Timestamp, hold_id: int, amount: int) -> None:
        """Reserve more for a still-pending hold (an order amended upwards)."""
        hold = self._pending(hold_id)
        if amount <= 0:
            return
        available = self.available(hold.owner)
        if available < amount:
            raise LedgerError(
                Refusal.INSUFFICIENT_FUNDS,
                available=format_money(available),
                what="increase",
                amount=format_money(amount),
            )
        self._move(
            ts,
            (hold.owner, AccountKind.AVAILABLE),
            (hold.owner, AccountKind.HELD),
            amount,
            TransferCode.HOLD,
            hold.ref,
        )
        hold.amount += amount
        hold.pending += amount

    def _pending(self, hold_id: int) -> Hold:
        hold = self.holds.get(hold_id)
        if hold is None or hold.state is not HoldState.PENDING:
            # Closed holds leave the table: touching one twice is a bug, never a retry.
            raise InvariantViolation(f"hold {hold_id} is not pending (closed or unknown)")
        return hold

    def capture(
        self,
        ts: Timestamp,
        hold_id: int,
        amount: int,
        to: LedgerKey,
        code: TransferCode = TransferCode.CAPTURE,
        ref: str | None = None,
    ) -> None:
        """Move part of a pending hold to ``to`` (escrow, collateral); the hold stays open."""
        hold = self._pending(hold_id)
        check(0 <= amount <= hold.pending, "capture %s beyond pending %s", amount, hold.pending)
        if amount:
            self._move(
                ts,
                (hold.owner, AccountKind.HELD),
                to,
                amount,
                code,
                hold.ref if ref is None else ref,
            )
            hold.pending -= amount
            hold.captured += amount

    def release(self, ts: Timestamp, hold_id: int, amount: int) -> None:
        """Return part of a pending hold to available (price improvement, partial cancel)."""
        hold = self._pending(hold_id)
        check(0 <= amount <= hold.pending, "release %s beyond pending %s", amount, hold.pending)
        if amount:
            self._move(
                ts,
                (hold.owner, AccountKind.HELD),
                (hold.owner, AccountKind.AVAILABLE),
                amount,
                TransferCode.RELEASE,
                hold.ref,
            )
            hold.pending -= amount
            hold.released += amount

    def close_hold(self, ts: Timestamp, hold_id: int) -> Hold:
        """Release what is still pending and close the hold: exactly once."""
        hold = self._pending(hold_id)
        self.release(ts, hold_id, hold.pending)
        hold.state = HoldState.POSTED if hold.captured else HoldState.VOIDED
        del self.holds[hold_id]
        return hold

    # ------------------------------------------------------------------ invariants
    def check_totals(self) -> None:
        """The O(1) conservation check run after every group of operations in production:
        the external account mirrors exactly the money that entered minus what left, so
        (every transfer being balanced by construction) the accounts inside hold exactly
        deposits minus withdrawals. Negative participant accounts are refused by every
        transfer as it is made."""
        external = self.balances.get((EXCHANGE, AccountKind.EXTERNAL), 0)
        check(
            external == self.withdrawn - self.deposited,
            "external account %s does not mirror deposits %s minus withdrawals %s",
            external,
            self.deposited,
            self.withdrawn,
        )

    def check(self) -> None:
        """Every ledger invariant; raises :class:`~exchange.invariants.InvariantViolation`."""
        total = 0
        inside = 0
        held: dict[int, int] = {}
        for (owner, kind), value in self.balances.items():
            total += value
            if kind is not AccountKind.EXTERNAL:
                inside += value
                check(value >= 0, f"account {owner}/{kind} is negative: {value}")
            if kind is AccountKind.HELD:
                held[owner] = value
        check(total == 0, f"ledger does not balance: sum of accounts {total}")
        check(
            inside == self.deposited - self.withdrawn,
            f"money inside {inside} != deposits - withdrawals {self.deposited - self.withdrawn}",
        )
        pending: dict[int, int] = {}
        for hold in self.holds.values():
            check(hold.state is HoldState.PENDING, f"closed hold {hold.id} still listed")
            check(
                hold.amount == hold.pending + hold.captured + hold.released,
                f"hold {hold.id} does not add up",
            )
            check(hold.pending >= 0, f"hold {hold.id} pending negative")
            pending[hold.owner] = pending.get(hold.owner, 0) + hold.pending
        for owner in set(held) | set(pending):
            check(
                held.get(owner, 0) == pending.get(owner, 0),
                f"held balance of {owner} != its pending holds",
            )
