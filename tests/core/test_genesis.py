"""The log alone determines the state: the catalog an exchange starts from is in its log.

A new exchange's first operations install the packaged catalog and start the clock; the
core itself starts empty and reads nothing. An upgrade that edits the packaged catalog
file therefore changes no logged exchange: replay gives the same state. A log written
before the catalog was logged is replayed against the packaged catalog, with a warning.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

import pricing.catalog
from api.db.chain import GENESIS
from api.db.store import Batch, Store
from api.projection import log_row
from api.service import ExchangeService
from exchange.catalog_log import catalog_entry, entry_model, install_catalog
from exchange.core import ExchangeCore, Rejected, replay
from exchange.genesis import begin_replay, genesis_operations, new_core, packaged_catalog
from exchange.operations import (
    AddHardware,
    AddPool,
    AdvanceClock,
    CatalogModel,
    ConfirmHardware,
    FigureIn,
    InstallCatalog,
    Operation,
    ReportDelivery,
    decode_operation,
    encode_operation,
)
from pricing import load_builtin_catalog
from tests.core.helpers import A100, H100, START, Market, make_market

PACKAGED = pricing.catalog.packaged_catalog_text()


def edited_catalog() -> str:
    """The packaged file as an upgrade might ship it: the H100's fp16 figure revised
    (a pool of H100s rates differently) and the A100 row gone."""
    lines = PACKAGED.splitlines(keepends=True)
    out = []
    for line in lines:
        if line.startswith(f"{A100},"):
            continue
        if line.startswith(f"{H100},"):
            line = line.replace(",989.4,989.4,", ",900,900,", 1)
        out.append(line)
    edited = "".join(out)
    assert edited != PACKAGED and A100 not in pricing.catalog.parse_catalog(edited)
    return edited


def traded_market() -> Market:
    """A market whose log holds an admin's model, pools of H100 and A100, a contract and
    its delivery: everything that depends on the catalog's figures."""
    m = make_market()
    m.apply(
        AddHardware(
            vendor="Acme", model="X1", figures={"fp16": FigureIn("800")}, memory_gb="96",
            memory_bandwidth_gbs="3000", tdp_w="700", quality="U", source="datasheet",
            id="acme-x1",
        )
    )  # fmt: skip
    m.apply(ConfirmHardware("acme-x1"))
    m.apply(AddPool(m.seller, m.site, A100, 10))
    m.apply(AddPool(m.seller, m.site, "acme-x1", 10))
    m.sell(40_000_000, 200_000)
    m.buy(40_000_000, 200_000)
    (contract,) = m.core.contracts.values()
    m.to_delivery()
    m.apply(ReportDelivery(m.seller, contract.id, m.pool, 100_000))
    return m


# ---------------------------------------------------------------------- the core
def test_a_core_starts_empty_and_reads_no_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> str:
        raise AssertionError("the packaged catalog was read")

    monkeypatch.setattr(pricing.catalog, "packaged_catalog_text", refuse)
    core = ExchangeCore()
    assert core.catalog == {} and core.now == 0 and core.engine.now == 0
    with pytest.raises(AssertionError, match="packaged catalog was read"):
        genesis_operations(START)  # only a new exchange's genesis reads it


def test_genesis_installs_the_packaged_catalog_then_starts_the_clock() -> None:
    first, second = genesis_operations(START)
    assert isinstance(first, InstallCatalog) and second == AdvanceClock(START)
    core = new_core(START)
    assert core.catalog == load_builtin_catalog() and core.now == START


def test_replay_gives_the_same_state_when_the_packaged_catalog_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = traded_market()
    expected = m.core.state_hash()
    monkeypatch.setattr(pricing.catalog, "packaged_catalog_text", edited_catalog)
    assert load_builtin_catalog()[H100] != m.core.catalog[H100]  # the upgrade took effect
    strict = ExchangeCore()
    for op in m.ops:  # every logged operation is accepted again
        strict.apply(op)
    assert strict.state_hash() == expected
    assert strict.catalog == m.core.catalog


def test_without_the_logged_catalog_the_same_log_would_replay_differently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why the catalog is logged: the log without its first operation, replayed against
    an edited packaged catalog (as logs were before), refuses the A100 pool and rates
    the H100 differently."""
    m = traded_market()
    monkeypatch.setattr(pricing.catalog, "packaged_catalog_text", edited_catalog)
    legacy = ExchangeCore()
    begin_replay(legacy, m.ops[1])
    refusals = []
    for op in m.ops[1:]:
        try:
            legacy.apply(op)
        except Rejected as exc:
            refusals.append(exc.code)
    assert "hardware_not_found" in refusals
    assert legacy.state_hash() != m.core.state_hash()


def test_an_admins_model_in_the_log_replays() -> None:
    m = traded_market()
    again = replay(m.ops)
    assert again.catalog["acme-x1"] == m.core.catalog["acme-x1"]
    assert again.catalog["acme-x1"].confirmed
    assert again.state_hash() == m.core.state_hash()


# ---------------------------------------------------------------------- the operation
def test_the_catalog_operation_encodes_and_decodes_exactly() -> None:
    op = packaged_catalog()
    assert len(op.models) == len(load_builtin_catalog()) > 20
    data = encode_operation(op)
    assert decode_operation(data) == op
    assert encode_operation(decode_operation(data)) == data
    for entry in op.models:
        model = entry_model(entry)
        assert model == load_builtin_catalog()[entry.id]
        assert catalog_entry(model) == entry


def test_every_figure_keeps_its_digits_and_exponent() -> None:
    """989.40, 1E+3 and 1E-7 read back alike (not merely equal) from the log."""
    base = catalog_entry(load_builtin_catalog()[H100])
    figures = {"fp16": "989.40", "bf16": "989.4", "fp32": "1E+3", "fp64": "1E-7"}
    entry = CatalogModel(**{**_fields(base), "peak_tflops": figures})
    model = entry_model(decode_operation(encode_operation(InstallCatalog([entry]))).models[0])  # type: ignore[union-attr]
    texts = {p.value: str(v) for p, v in model.peak_tflops.items()}
    assert texts == figures
    fp16 = model.peak_tflops[pricing.catalog.Precision.FP16]
    assert fp16.as_tuple() == Decimal("989.40").as_tuple() != Decimal("989.4").as_tuple()


def _fields(entry: CatalogModel) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__struct_fields__}


def test_a_newer_packaged_catalog_installs_as_an_operation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An admin installs the upgrade's catalog: models updated, none removed (the A100,
    gone from the file, stays, as its pools need it), an admin's confirmation kept."""
    m = traded_market()
    m.apply(ConfirmHardware(H100))
    monkeypatch.setattr(pricing.catalog, "packaged_catalog_text", edited_catalog)
    installed = m.apply(packaged_catalog())
    assert isinstance(installed, list) and H100 in {model.id for model in installed}
    catalog = m.core.catalog
    assert catalog[H100].peak_tflops[pricing.catalog.Precision.FP16] == Decimal(900)
    assert catalog[H100].confirmed and A100 in catalog and "acme-x1" in catalog
    m.core.check()
    assert replay(m.ops).state_hash() == m.core.state_hash()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id": "Not A Slug"}, "invalid_model_id"),
        ({"id": "x" * 81}, "invalid_model_id"),
        ({"vendor": "v" * 61}, "invalid_name"),
        ({"model": "m" * 121}, "invalid_name"),
        ({"vendor": ""}, "missing_name"),
        ({"source": "s" * 501}, "invalid_source"),
        ({"quality": "Z"}, "invalid_quality"),
        ({"peak_tflops": {"fp17": "1"}}, "invalid_precision"),
        ({"peak_tflops": {"fp16": "-1"}}, "non_positive_peak"),
        ({"peak_tflops": {"fp16": "1e999999999"}}, "invalid_decimal"),
        ({"peak_tflops": {"fp16": "NaN"}}, "invalid_decimal"),
        ({"peak_tflops": {"fp16": "\u0661\u0662"}}, "invalid_decimal"),  # Arabic-Indic digits
        ({"peak_tflops": {"fp16": "100", "fp8": "50"}}, "fp16_above_fp8"),
        ({"memory_gb": "0"}, "non_positive_memory"),
        ({"figure_quality": {"fp99": "U"}}, "unknown_figure_name"),
    ],
)
def test_a_catalog_entry_is_checked_like_any_model(change: dict[str, object], code: str) -> None:
    m = make_market()
    base = catalog_entry(m.core.catalog[H100])
    entry = CatalogModel(**{**_fields(base), **change})
    assert m.reject(InstallCatalog([entry])) == code


def test_a_catalog_operation_is_refused_whole() -> None:
    m = make_market()
    good = catalog_entry(m.core.catalog[H100])
    bad = CatalogModel(**{**_fields(good), "id": "acme-bad", "quality": "Z"})
    assert m.reject(InstallCatalog([good, bad])) == "invalid_quality"
    assert m.reject(InstallCatalog([good, good])) == "duplicate_model_id"
    assert m.reject(InstallCatalog([])) == "invalid_catalog"


# ---------------------------------------------------------------------- old logs
def _legacy_log(tmp_path: Path) -> tuple[str, list[Operation]]:
    """A database whose log was written before the catalog was logged: it begins with the
    clock, and its pool names a packaged model."""
    m = make_market()
    ops = m.ops[1:]  # no InstallCatalog
    assert ops[0] == AdvanceClock(START)
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    store = Store(url)
    batch, previous = Batch(), GENESIS
    for seq, op in enumerate(ops, start=1):
        row = log_row(seq, START, op, previous)
        previous = row[4]
        batch.operations.append(row)
    store.write(batch)
    store.close()
    return url, ops


def test_an_old_log_replays_against_the_packaged_catalog_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, ops = _legacy_log(tmp_path)
    with caplog.at_level(logging.WARNING, logger="suanli.genesis"):
        service = ExchangeService(Store(url), clock="simulated")
    try:
        warnings = [r for r in caplog.records if r.name == "suanli.genesis"]
        assert len(warnings) == 1 and "packaged catalog" in warnings[0].getMessage()
        assert service.seq == len(ops)  # every logged operation accepted, nothing added
        expected = replay([packaged_catalog(), *ops])
        assert service.core.state_hash() == expected.state_hash()
    finally:
        service.store.close()


def test_a_new_log_begins_with_its_catalog_and_replays_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    service = ExchangeService(Store(url), clock="simulated", start_us=START)
    first = service.core.state_hash()
    service.store.close()
    with caplog.at_level(logging.WARNING, logger="suanli.genesis"):
        again = ExchangeService(Store(url), clock="simulated")
    try:
        assert not [r for r in caplog.records if r.name == "suanli.genesis"]
        assert [op for _, op in again.store.operations()] == genesis_operations(START)
        assert again.core.state_hash() == first
    finally:
        again.store.close()


def test_begin_replay_decides_from_the_first_operation_alone() -> None:
    core = ExchangeCore()
    assert begin_replay(core, install_catalog(load_builtin_catalog())) is False
    assert core.catalog == {}
    assert begin_replay(core, AdvanceClock(START)) is True
    assert core.catalog == load_builtin_catalog()
