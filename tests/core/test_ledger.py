"""The double-entry ledger: deposits, withdrawals, two-phase holds and its own check()."""

from __future__ import annotations

import pytest

from exchange.invariants import InvariantViolation
from exchange.ledger import EXCHANGE, AccountKind, HoldState, Ledger, LedgerError, TransferCode

A, B = 1, 2
AVAIL, HELD, ESCROW = AccountKind.AVAILABLE, AccountKind.HELD, AccountKind.ESCROW


def funded(amount: int = 1_000) -> Ledger:
    ledger = Ledger()
    ledger.deposit(0, A, amount)
    return ledger


def test_deposit_and_withdraw_move_money_in_and_out() -> None:
    ledger = funded(1_000)
    ledger.withdraw(1, A, 300)
    assert ledger.available(A) == 700
    assert ledger.deposited == 1_000 and ledger.withdrawn == 300
    assert ledger.balance(EXCHANGE, AccountKind.EXTERNAL) == -700
    codes = [t.code for t in ledger.drain()]
    assert codes == [TransferCode.DEPOSIT, TransferCode.WITHDRAWAL]
    assert ledger.drain() == []
    ledger.check()


@pytest.mark.parametrize("amount", [0, -1])
def test_non_positive_deposit_or_withdrawal_is_refused(amount: int) -> None:
    ledger = funded()
    with pytest.raises(LedgerError) as exc:
        ledger.deposit(0, A, amount)
    assert exc.value.code == "invalid_amount"
    with pytest.raises(LedgerError) as exc:
        ledger.withdraw(0, A, amount)
    assert exc.value.code == "invalid_amount"
    assert ledger.available(A) == 1_000 and ledger.deposited == 1_000


def test_withdrawal_beyond_available_is_refused_and_changes_nothing() -> None:
    ledger = funded(1_000)
    ledger.open_hold(0, A, 600, "order:1")
    with pytest.raises(LedgerError) as exc:
        ledger.withdraw(1, A, 401)  # 1,000 inside, but only 400 available
    assert exc.value.code == "insufficient_funds"
    assert ledger.available(A) == 400 and ledger.withdrawn == 0
    ledger.withdraw(1, A, 400)
    assert ledger.available(A) == 0
    ledger.check()


def test_hold_beyond_available_is_refused() -> None:
    ledger = funded(100)
    with pytest.raises(LedgerError) as exc:
        ledger.open_hold(0, A, 101, "order:1")
    assert exc.value.code == "insufficient_funds"
    assert ledger.holds == {} and ledger.available(A) == 100
    assert not ledger.can_hold(A, 101) and ledger.can_hold(A, 100)


def test_hold_capture_release_close_adds_up() -> None:
    ledger = funded(1_000)
    hold = ledger.open_hold(0, A, 600, "order:1")
    assert (ledger.available(A), ledger.balance(A, HELD)) == (400, 600)
    ledger.capture(1, hold.id, 250, (A, ESCROW))
    ledger.release(1, hold.id, 50)
    assert (hold.pending, hold.captured, hold.released) == (300, 250, 50)
    assert ledger.balance(A, ESCROW) == 250 and ledger.balance(A, HELD) == 300
    ledger.check()
    closed = ledger.close_hold(2, hold.id)
    assert closed.state is HoldState.POSTED
    assert (closed.pending, closed.captured, closed.released) == (0, 250, 350)
    assert ledger.available(A) == 750 and ledger.balance(A, HELD) == 0
    assert hold.id not in ledger.holds
    ledger.check()


def test_hold_closed_without_capture_is_voided_and_everything_returns() -> None:
    ledger = funded(1_000)
    hold = ledger.open_hold(0, A, 999, "order:1")
    assert ledger.close_hold(1, hold.id).state is HoldState.VOIDED
    assert ledger.available(A) == 1_000
    ledger.check()


def test_zero_hold_is_allowed_and_moves_nothing() -> None:
    ledger = funded(10)
    ledger.drain()
    hold = ledger.open_hold(0, A, 0, "order:1")
    assert ledger.drain() == []
    assert ledger.close_hold(1, hold.id).state is HoldState.VOIDED
    ledger.check()


@pytest.mark.parametrize(
    "second",
    [
        lambda lg, h: lg.close_hold(3, h),
        lambda lg, h: lg.capture(3, h, 1, (A, ESCROW)),
        lambda lg, h: lg.capture(3, h, 0, (A, ESCROW)),
        lambda lg, h: lg.release(3, h, 1),
        lambda lg, h: lg.release(3, h, 0),
        lambda lg, h: lg.increase_hold(3, h, 10),
    ],
    ids=["close", "capture", "capture-zero", "release", "release-zero", "increase"],
)
def test_a_closed_hold_refuses_every_further_operation(second) -> None:  # type: ignore[no-untyped-def]
    ledger = funded(1_000)
    hold = ledger.open_hold(0, A, 500, "order:1")
    ledger.capture(1, hold.id, 100, (A, ESCROW))
    ledger.close_hold(2, hold.id)
    balances = dict(ledger.balances)
    with pytest.raises(InvariantViolation):
        second(ledger, hold.id)
    assert ledger.balances == balances
    ledger.check()


def test_unknown_hold_is_an_invariant_violation() -> None:
    ledger = funded()
    with pytest.raises(InvariantViolation):
        ledger.close_hold(0, 42)


def test_capture_or_release_beyond_pending_is_an_invariant_violation() -> None:
    ledger = funded(1_000)
    hold = ledger.open_hold(0, A, 100, "order:1")
    with pytest.raises(InvariantViolation):
        ledger.capture(1, hold.id, 101, (A, ESCROW))
    with pytest.raises(InvariantViolation):
        ledger.release(1, hold.id, 101)
    with pytest.raises(InvariantViolation):
        ledger.release(1, hold.id, -1)
    assert hold.pending == 100 and ledger.balance(A, HELD) == 100
    ledger.check()


def test_increase_hold_reserves_more_and_checks_funds() -> None:
    ledger = funded(1_000)
    hold = ledger.open_hold(0, A, 400, "order:1")
    ledger.increase_hold(1, hold.id, 500)
    assert (hold.amount, hold.pending) == (900, 900)
    assert ledger.available(A) == 100 and ledger.balance(A, HELD) == 900
    with pytest.raises(LedgerError) as exc:
        ledger.increase_hold(2, hold.id, 101)
    assert exc.value.code == "insufficient_funds"
    assert hold.amount == 900 and ledger.available(A) == 100
    ledger.increase_hold(2, hold.id, 0)  # nothing to do
    assert hold.amount == 900
    ledger.check()


def test_internal_move_skips_zero_and_refuses_overdraft() -> None:
    ledger = funded(100)
    assert ledger.move(0, (A, AVAIL), (B, AVAIL), 0, TransferCode.PAYMENT, "x") is None
    ledger.move(0, (A, AVAIL), (B, AVAIL), 60, TransferCode.PAYMENT, "x")
    with pytest.raises(InvariantViolation):
        ledger.move(0, (A, AVAIL), (B, AVAIL), 41, TransferCode.PAYMENT, "x")
    with pytest.raises(InvariantViolation):
        ledger.move(0, (A, AVAIL), (A, AVAIL), 1, TransferCode.PAYMENT, "x")
    with pytest.raises(InvariantViolation):
        ledger.move(0, (A, AVAIL), (B, AVAIL), -1, TransferCode.PAYMENT, "x")
    assert (ledger.available(A), ledger.available(B)) == (40, 60)
    ledger.check()


# ---------------------------------------------------------------- check() catches tampering
def tampered(kind: str) -> Ledger:
    ledger = funded(1_000)
    ledger.deposit(0, B, 500)
    hold = ledger.open_hold(0, A, 300, "order:1")
    ledger.check()
    if kind == "negative":  # still sums to zero, but a participant is below zero
        ledger.balances[(A, AVAIL)] -= 800
        ledger.balances[(B, AVAIL)] += 800
    elif kind == "unbalanced":
        ledger.balances[(B, AVAIL)] += 1
    elif kind == "created":  # balances but more money inside than was deposited
        ledger.balances[(B, AVAIL)] += 1
        ledger.balances[(EXCHANGE, AccountKind.EXTERNAL)] -= 1
    elif kind == "held-drift":  # held moved without its hold
        ledger.balances[(A, HELD)] -= 1
        ledger.balances[(A, AVAIL)] += 1
    elif kind == "hold-sum":
        hold.captured += 1
    elif kind == "closed-listed":
        hold.state = HoldState.VOIDED
    return ledger


@pytest.mark.parametrize(
    "kind", ["negative", "unbalanced", "created", "held-drift", "hold-sum", "closed-listed"]
)
def test_check_catches_tampering(kind: str) -> None:
    ledger = tampered(kind)
    with pytest.raises(InvariantViolation):
        ledger.check()
