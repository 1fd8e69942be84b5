"""Tiers (the standard products), the listing of each tier's delivery windows as
instruments, halts and resumptions, and each tier's reference price."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from exchange.components.catalog import Catalog, precision
from exchange.components.clock import CLOSE, DELIVER, LIST, SETTLE, Time
from exchange.components.context import Rules
from exchange.engine import MatchingEngine, Outcome
from exchange.events import InstrumentStateChanged
from exchange.ids import Symbol, Timestamp
from exchange.lifecycle import TRANSITIONS, InstrumentEvent, InstrumentState
from exchange.operations import CreateTier, HaltInstrument, ResumeInstrument, UpdateTier
from exchange.products import (
    HOUR_US,
    DeliveryWindow,
    GreenGrade,
    Instrument,
    Tier,
    TierError,
    TierStatus,
)
from exchange.records import InstrumentRecord, TierRecord, window_symbol
from exchange.refusals import Refusal
from exchange.units import Price, Quantity
from pricing import TradePrint, reference_price

__all__ = ["REGIONS", "Listing"]

MINUTE_US = 60_000_000
REGIONS = frozenset({"north", "northeast", "east", "central", "northwest", "south", "southwest"})
_REGION_LIST = ", ".join(sorted(REGIONS))
_STATUSES = ", ".join(status.value for status in TierStatus)
_OPEN_LIKE = (InstrumentState.OPEN, InstrumentState.HALTED)


class Listing:
    __slots__ = (
        "_catalog",
        "_engine",
        "_rules",
        "_run",
        "_time",
        "find",
        "instruments",
        "tier_record",
        "tiers",
    )
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {
        "tiers": ("tiers",),
        "instruments": ("instruments",),
    }
    #: Not state: what the component was built with, and reads bound once.
    REFERENCES: ClassVar[tuple[str, ...]] = (
        "_catalog",
        "_engine",
        "_rules",
        "_run",
        "_time",
        "find",
        "tier_record",
    )

    def __init__(
        self,
        time: Time,
        rules: Rules,
        catalog: Catalog,
        engine: MatchingEngine,
        run: Callable[[Outcome], None],
    ) -> None:
        """``engine`` lists the instruments and moves their states; ``run`` applies what
        it answers (:meth:`exchange.components.context.Journal.run`)."""
        self._time = time
        self._rules = rules
        self._catalog = catalog
        self._engine = engine
        self._run = run
        self.tiers: dict[str, TierRecord] = {}
        self.instruments: dict[Symbol, InstrumentRecord] = {}
        # Reads on the path of every order, bound once (the dicts are never replaced).
        #: The instrument of a symbol, or None.
        self.find: Callable[[str], InstrumentRecord | None] = self.instruments.get  # type: ignore[assignment]
        #: The record of a tier code (KeyError for an unknown code).
        self.tier_record: Callable[[str], TierRecord] = self.tiers.__getitem__

    # ------------------------------------------------------------------ tiers
    def create_tier(self, op: CreateTier) -> TierRecord:
        if op.code in self.tiers:
            raise Refusal.TIER_EXISTS.reject(tier=op.code)
        if not self._catalog.has_class(op.gpu_class):
            raise Refusal.GPU_CLASS_NOT_FOUND.reject(code=op.gpu_class)
        try:
            if op.min_green_grade is not None and len(op.min_green_grade) > 8:
                raise ValueError("a green grade is 1A to 5A")
            grade = GreenGrade.parse(op.min_green_grade) if op.min_green_grade else None
        except ValueError as exc:
            raise Refusal.INVALID_GREEN_GRADE.reject(reason=str(exc)) from exc
        regions = tuple(op.regions)
        for at, region in enumerate(regions):
            if region not in REGIONS:
                raise Refusal.INVALID_REGION.reject(
                    region=repr(region[:20]), problem=f"unknown: one of {_REGION_LIST}"
                )
            if self._rules.admitting and region in regions[:at]:
                raise Refusal.INVALID_REGION.reject(region=repr(region), problem="repeated")
        if op.window_hours not in (1, 2, 3, 4, 6, 8, 12, 24):
            raise Refusal.INVALID_TIER.reject(
                reason=f"window_hours {op.window_hours} does not divide 24"
            )
        try:
            tier = Tier(
                code=op.code,
                precision=precision(op.precision),
                gpu_class=op.gpu_class,
                tick=op.tick,
                lot=op.lot,
                min_quantity=op.min_quantity,
                max_quantity=op.max_quantity,
                price_band_bps=op.price_band_bps,
                maker_fee_bps=op.maker_fee_bps,
                taker_fee_bps=op.taker_fee_bps,
                min_green_grade=grade,
                regions=regions,
                shortfall_penalty_bps=op.shortfall_penalty_bps,
                arithmetic_intensity=op.arithmetic_intensity,
                window_hours=op.window_hours,
                list_ahead_hours=op.list_ahead_hours,
                gate_closure_minutes=op.gate_closure_minutes,
                reference_price=op.reference_price,
            )
        except TierError as exc:
            raise Refusal.INVALID_TIER.reject(reason=str(exc)) from exc
        if op.code.count("-") > 8 or not all(c.isalnum() or c == "-" for c in op.code):
            raise Refusal.INVALID_CODE.reject(
                reason="a tier code is letters, digits and at most 8 dashes"
            )
        now = self._time.now
        window_us = tier.window_hours * HOUR_US
        gate_us = tier.gate_closure_minutes * MINUTE_US
        # First window whose gate is still ahead.
        start = -(-(now + gate_us + 1) // window_us) * window_us
        record = TierRecord(
            tier,
            op.reference_price,
            TierStatus.ACTIVE,
            now,
            start,
            op.reference_price,
        )
        self.tiers[tier.code] = record
        self._list_due(record)
        return record

    def update_tier(self, op: UpdateTier) -> TierRecord:
        record = self.tiers.get(op.code)
        if record is None:
            raise Refusal.TIER_NOT_FOUND.reject(tier=op.code)
        status = record.status
        if op.status is not None:
            try:
                status = TierStatus(op.status)
            except ValueError as exc:
                raise Refusal.INVALID_STATUS.reject(statuses=_STATUSES) from exc
            if record.status is TierStatus.RETIRED and status is not TierStatus.RETIRED:
                raise Refusal.TIER_RETIRED.reject(tier=op.code)
        changes: dict[str, Any] = {}
        for name in (
            "maker_fee_bps",
            "taker_fee_bps",
            "price_band_bps",
            "shortfall_penalty_bps",
            "list_ahead_hours",
        ):
            value = getattr(op, name)
            if value is not None:
                changes[name] = value
        if op.reference_price is not None:
            changes["reference_price"] = op.reference_price
        tier = record.tier
        if changes:
            try:
                tier = dataclasses.replace(tier, **changes)
            except TierError as exc:
                raise Refusal.INVALID_TIER.reject(reason=str(exc)) from exc
        # Validated: apply.
        old_status = record.status
        record.tier = tier
        if op.reference_price is not None:
            record.admin_price = op.reference_price
            if not record.trades:
                record.reference = record.admin_price
            record.dirty = True
        record.status = status
        engine, run = self._engine, self._run
        for inst in self.instruments.values():
            if inst.instrument.tier.code != tier.code or inst.state not in _OPEN_LIKE:
                continue
            if status is TierStatus.SUSPENDED and inst.state is InstrumentState.OPEN:
                run(engine.transition(inst.symbol, InstrumentEvent.HALT))
            elif (
                status is TierStatus.ACTIVE
                and old_status is TierStatus.SUSPENDED
                and inst.state is InstrumentState.HALTED
            ):
                run(engine.transition(inst.symbol, InstrumentEvent.RESUME))
        if status is TierStatus.ACTIVE and old_status is not TierStatus.ACTIVE:
            self._list_due(record)
        self._refresh_reference(record, force=True)
        return record

    def list_due_of(self, code: str) -> None:
        """The scheduled listing of a tier."""
        self._list_due(self.tiers[code])

    def _list_due(self, record: TierRecord) -> None:
        """List every window of an active tier whose listing time has come."""
        tier = record.tier
        now = self._time.now
        window_us = tier.window_hours * HOUR_US
        ahead_us = tier.list_ahead_hours * HOUR_US
        gate_us = tier.gate_closure_minutes * MINUTE_US
        while record.status is TierStatus.ACTIVE and record.next_start - ahead_us <= now:
            start = record.next_start
            record.next_start += window_us
            if start - gate_us <= now:
                continue  # its gate already closed: never listed
            self._list_window(record, start, start + window_us, start - gate_us)
        if record.status is TierStatus.ACTIVE:
            self._time.at(record.next_start - ahead_us, LIST, tier.code)

    def _list_window(self, record: TierRecord, start: int, end: int, gate: int) -> None:
        symbol = window_symbol(record.tier.code, start)
        if symbol in self.instruments:
            return
        instrument = Instrument(
            symbol, record.tier, DeliveryWindow(Timestamp(start), Timestamp(end)), Timestamp(gate)
        )
        hours = tuple(range(start, end, HOUR_US))
        self.instruments[symbol] = InstrumentRecord(instrument, hours)
        self._run(self._engine.list_instrument(instrument, record.reference))
        self._run(self._engine.transition(symbol, InstrumentEvent.OPEN))
        time = self._time
        time.at(gate, CLOSE, symbol)
        time.at(start, DELIVER, symbol)
        time.at(end + time.grace_us, SETTLE, symbol)

    def refresh_references(self) -> None:
        """Derive each tier's reference price again where trades came since."""
        for record in self.tiers.values():
            self._refresh_reference(record)

    def _refresh_reference(self, record: TierRecord, *, force: bool = False) -> None:
        """Derive the tier's reference price from its trades; move the bands of its books."""
        if not (record.dirty or force):
            return
        record.dirty = False
        new = reference_price(record.tier, record.admin_price, record.trades, self._time.now)
        if new.price == record.reference and not force:
            return
        record.reference = new.price
        engine = self._engine
        for inst in self.instruments.values():
            if inst.instrument.tier.code == record.tier.code and inst.state in _OPEN_LIKE:
                market = engine.market(inst.symbol)
                if market is not None and market.reference_price != new.price:
                    self._run(engine.set_reference_price(inst.symbol, new.price))

    # ------------------------------------------------------------------ instruments
    def halt(self, op: HaltInstrument) -> InstrumentRecord:
        return self._move(op.symbol, InstrumentState.OPEN, InstrumentEvent.HALT)

    def resume(self, op: ResumeInstrument) -> InstrumentRecord:
        return self._move(op.symbol, InstrumentState.HALTED, InstrumentEvent.RESUME)

    def _move(
        self, symbol: str, required: InstrumentState, event: InstrumentEvent
    ) -> InstrumentRecord:
        inst = self.instrument(symbol)
        if inst.state is not required:
            raise Refusal.INVALID_TRANSITION.reject(
                state=inst.state.value, target=TRANSITIONS[(required, event)].value
            )
        self._run(self._engine.transition(inst.symbol, event))
        return inst

    def close(self, symbol: str) -> None:
        """Gate closure (scheduled), unless the instrument already left trading."""
        inst = self.instruments[Symbol(symbol)]
        if inst.state in (InstrumentState.OPEN, InstrumentState.HALTED, InstrumentState.LISTED):
            self._run(self._engine.transition(inst.symbol, InstrumentEvent.CLOSE))

    def start_delivery(self, symbol: str) -> list[int]:
        """The window starts (scheduled): the ids of the contracts that now deliver."""
        inst = self.instruments[Symbol(symbol)]
        self._run(self._engine.transition(inst.symbol, InstrumentEvent.START_DELIVERY))
        return inst.contract_ids

    def settle(self, symbol: str) -> None:
        """Final settlement of the window (scheduled, after its contracts settled)."""
        self._run(self._engine.transition(Symbol(symbol), InstrumentEvent.SETTLE))

    def retire(self, symbol: str) -> None:
        """A settled instrument keeps its definition, state and last price; its trades
        and contracts left the core (:meth:`Clearing.retire`)."""
        inst = self.instruments[Symbol(symbol)]
        inst.contract_ids = []
        inst.trades = []

    def on_state_changed(self, event: InstrumentStateChanged) -> None:
        self.instruments[event.symbol].state = event.new_state

    def record_trade(self, symbol: Symbol, contract_id: int, price: int, quantity: int) -> None:
        """A trade cleared into ``contract_id``: the instrument's and the tier's prints."""
        inst = self.instruments[symbol]
        inst.contract_ids.append(contract_id)
        inst.last_price = Price(price)
        tier_record = self.tiers[inst.instrument.tier.code]
        print_ = TradePrint(symbol, Price(price), Quantity(quantity), self._time.now)
        inst.trades.append(print_)
        tier_record.trades.append(print_)
        tier_record.dirty = True

    # ------------------------------------------------------------------ reads
    def instrument(self, symbol: str) -> InstrumentRecord:
        """The instrument, or the refusal ``instrument_not_found``."""
        inst = self.instruments.get(Symbol(symbol))
        if inst is None:
            raise Refusal.INSTRUMENT_NOT_FOUND.reject(instrument=symbol)
        return inst

    def contract_ids(self, symbol: str) -> list[int]:
        """The ids of the contracts traded in an instrument, in order."""
        return self.instruments[Symbol(symbol)].contract_ids

    def tier_of(self, inst: InstrumentRecord) -> Tier:
        """The tier an instrument trades as it is now (an update changes fees, bands...)."""
        return self.tier_record(inst.instrument.tier.code).tier
