"""Accounts, their API keys and the ledger: account creation, keys issued and revoked,
deposits and withdrawals, and the balances of an account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from exchange.components.bounds import NAME_MAX
from exchange.components.clock import Time
from exchange.keys import ApiKeyBook, ApiKeyRecord
from exchange.ledger import AccountKind, Ledger, LedgerError
from exchange.operations import CreateAccount, Deposit, IssueApiKey, RevokeApiKey, Withdraw
from exchange.records import AccountRecord, Rejected
from exchange.refusals import Refusal

__all__ = ["Accounts"]

_BALANCE_KINDS = (
    AccountKind.AVAILABLE,
    AccountKind.HELD,
    AccountKind.ESCROW,
    AccountKind.COLLATERAL,
)


class Accounts:
    __slots__ = ("_time", "accounts", "api_keys", "exists", "ledger")
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {
        "accounts": ("accounts", "api_keys"),
        "ledger": ("ledger",),
    }
    #: Not state: what the component was built with, and reads bound once.
    REFERENCES: ClassVar[tuple[str, ...]] = ("_time", "exists")

    def __init__(self, time: Time, currency: str) -> None:
        self._time = time
        self.accounts: dict[int, AccountRecord] = {}
        self.api_keys = ApiKeyBook()
        self.ledger = Ledger(currency)
        #: Whether an account exists (the dict's own test: on the path of every order).
        self.exists: Callable[[int], bool] = self.accounts.__contains__

    # ------------------------------------------------------------------ operations
    def create_account(self, op: CreateAccount) -> AccountRecord:
        name = op.name.strip()
        if not name or len(name) > NAME_MAX:
            raise Refusal.INVALID_NAME.reject(
                reason=f"an account name is 1 to {NAME_MAX} characters"
            )
        if op.role not in ("trader", "admin"):
            raise Refusal.INVALID_ROLE.reject(roles="trader or admin")
        keyed = op.key_prefix is not None or op.key_digest is not None
        if keyed:
            self.api_keys.check_new(op.key_prefix or "", op.key_digest or "", op.key_origin)
        now = self._time.now
        record = AccountRecord(self._time.next_id("account"), name, op.role, now)
        self.accounts[record.id] = record
        if keyed:
            self.api_keys.add(
                record.id, op.key_prefix or "", op.key_digest or "", op.key_origin, now
            )
        return record

    def issue_api_key(self, op: IssueApiKey) -> ApiKeyRecord:
        self.account(op.account_id)
        self.api_keys.check_new(op.prefix, op.digest, op.origin)
        return self.api_keys.add(op.account_id, op.prefix, op.digest, op.origin, self._time.now)

    def revoke_api_key(self, op: RevokeApiKey) -> ApiKeyRecord:
        return self.api_keys.revoke(op.key_id, self._time.now)

    def deposit(self, op: Deposit) -> Any:
        self.account(op.account_id)
        if op.amount <= 0:
            raise Refusal.INVALID_AMOUNT.reject(subject="a deposit")
        return self.ledger.deposit(self._time.now, op.account_id, op.amount, "deposit")

    def withdraw(self, op: Withdraw) -> Any:
        self.account(op.account_id)
        if op.amount <= 0:
            raise Refusal.INVALID_AMOUNT.reject(subject="a withdrawal")
        try:
            return self.ledger.withdraw(self._time.now, op.account_id, op.amount, "withdrawal")
        except LedgerError as exc:
            raise Rejected(exc.code, **exc.fields) from exc

    # ------------------------------------------------------------------ reads
    def account(self, account_id: int) -> AccountRecord:
        """The account, or the refusal ``account_not_found``."""
        record = self.accounts.get(account_id)
        if record is None:
            raise Refusal.ACCOUNT_NOT_FOUND.reject(account_id=account_id)
        return record

    def ids(self) -> list[int]:
        """Every account id, in the order they were created."""
        return list(self.accounts)

    def balances(self, account_id: int) -> dict[str, int]:
        ledger = self.ledger
        return {kind.value: ledger.balance(account_id, kind) for kind in _BALANCE_KINDS}

    def check(self) -> None:
        self.ledger.check()
