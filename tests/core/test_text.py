"""Clean, bounded text: the core is the last gate before the log.

No operation carrying a control character (U+0000-U+001F, U+007F-U+009F) or a lone
surrogate (U+D800-U+DFFF) in any string, at any depth (a list element, a dict key, a
field of a nested record), is accepted: ``invalid_characters``, nothing changed. The
strings are found generically, from each operation's fields, so the test covers a string
field added later. Every text the core keeps fits the database column that keeps it.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from sqlalchemy import String

import api.db.tables as t
from exchange import core as core_module
from exchange.catalog_log import catalog_entry
from exchange.components import bounds
from exchange.operations import (
    AddHardware,
    AddPool,
    CancelAll,
    ConfirmHardware,
    CreateAccount,
    CreateGpuClass,
    FigureIn,
    HaltInstrument,
    InstallCatalog,
    IssueApiKey,
    Operation,
    PlaceOrder,
    RegisterSite,
    ResumeInstrument,
    UpdateTier,
)
from exchange.orders import Side
from exchange.text import is_clean, text_fields
from pricing import MODEL_ID_MAX, MODEL_NAME_MAX, VENDOR_MAX
from tests.core.helpers import H100, Market, create_tier, make_market

BAD = ["\x00", "\x09", "\x1b", "\x1f", "\x7f", "\x85", "\x9f", "\ud800", "\udc00", "\udfff"]
CLEAN = ["上海 东数西算", "Gui'an", "café", "zone\u00a0B", "\u2603", "a b", "😀"]


def samples(m: Market) -> list[Operation]:
    """One acceptable operation of every kind that carries text."""
    return [
        CreateAccount("lab two", "trader"),
        InstallCatalog([catalog_entry(m.core.catalog[H100])]),
        AddHardware(
            vendor="Acme",
            model="Z9",
            figures={"fp16": FigureIn("100", accumulation="fp32")},
            memory_gb="64",
            memory_bandwidth_gbs="2000",
            tdp_w="300",
            quality="U",
            source="datasheet",
            id="acme-z9",
        ),
        ConfirmHardware(H100),
        CreateGpuClass("Z", "Zed", "fp16", "1", "0", "0", vendors=["NVIDIA"], models=[H100]),
        create_tier("Z-1", min_green_grade="1A", regions=["east"]),
        UpdateTier("FP16-H", status="active"),
        RegisterSite(
            m.seller, "gz", "southwest", "1.2", "0.5", emission_factor="0.5", location="Gui'an"
        ),
        AddPool(m.seller, m.site, H100, 1),
        PlaceOrder(m.buyer, m.symbol, Side.BUY, 1_000, 200_000, client_order_id="c-1"),
        CancelAll(m.buyer, m.symbol),
        IssueApiKey(m.buyer, "sk_AbCdE", "sha256$" + "ab" * 32),
        HaltInstrument(m.symbol),
        ResumeInstrument(m.symbol),
    ]


def poisoned(value: Any, bad: str, path: str) -> Iterator[tuple[str, Any]]:
    """``value`` with ``bad`` put into each of its strings (and each unset text), one at a
    time, with where."""
    if value is None or isinstance(value, str):
        yield path, ("" if value is None else value) + bad
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for where, new in poisoned(item, bad, f"{path}[{i}]"):
                yield where, [*value[:i], new, *value[i + 1 :]]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}<key>", {**{k: v for k, v in value.items() if k != key}, key + bad: item}
            for where, new in poisoned(item, bad, f"{path}.{key}"):
                yield where, {**value, key: new}
    elif isinstance(value, msgspec.Struct):
        for name in text_fields(type(value)):
            for where, new in poisoned(getattr(value, name), bad, f"{path}.{name}"):
                yield where, msgspec.structs.replace(value, **{name: new})


@pytest.fixture(scope="module")
def market() -> Market:
    return make_market()


def test_every_operation_that_carries_text_has_a_sample(market: Market) -> None:
    kinds = {type(op) for op in samples(market)}
    carrying = {k for k in typing.get_args(Operation) if text_fields(k)}
    assert kinds == carrying


def test_the_samples_are_acceptable() -> None:
    """So that a refusal below is for the characters alone."""
    for i in range(len(samples(make_market()))):
        m = make_market()
        op = samples(m)[i]
        if isinstance(op, ResumeInstrument):
            m.apply(HaltInstrument(op.symbol))
        m.apply(op)


def test_any_unclean_string_anywhere_in_any_operation_is_refused(market: Market) -> None:
    cases = 0
    for op in samples(market):
        for bad in ("\x00", "\x85", "\ud800"):
            for where, variant in poisoned(op, bad, type(op).__name__):
                assert market.reject(variant) == "invalid_characters", where
                cases += 1
    assert cases > 150


@pytest.mark.parametrize("bad", BAD)
def test_each_refused_character_is_refused(market: Market, bad: str) -> None:
    for text in (bad, f"a{bad}", f"{bad}z", f"name {bad} here"):
        op = PlaceOrder(market.buyer, market.symbol, Side.BUY, 1_000, 200_000, client_order_id=text)
        assert market.reject(op) == "invalid_characters"
        assert market.reject(CreateAccount(text, "trader")) == "invalid_characters"


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_in_any_script_is_accepted(text: str) -> None:
    m = make_market()
    assert is_clean(text)
    account = m.apply(CreateAccount(text, "trader"))
    assert account.name == text  # type: ignore[attr-defined]
    site = m.apply(RegisterSite(m.seller, text, "east", "1.2", "0", location=text))
    assert site.location == text  # type: ignore[attr-defined]


def test_a_refusal_message_never_echoes_the_characters(market: Market) -> None:
    op = CreateGpuClass("Z", "Zed", "fp16", "1", vendors=["NVIDIA", "A\x00B"])
    try:
        market.core.apply(op)
    except core_module.Rejected as exc:
        assert exc.code == "invalid_characters"
        assert is_clean(exc.message) and "vendors[1]" in exc.message
    else:  # pragma: no cover - a failing test
        raise AssertionError("accepted")


# ---------------------------------------------------------------------- bounded lengths
def _column(table: type, name: str) -> int:
    column = table.__table__.c[name]  # type: ignore[attr-defined]
    assert isinstance(column.type, String) and column.type.length is not None
    return int(column.type.length)


def test_every_bound_fits_its_database_column() -> None:
    assert _column(t.AccountRow, "name") >= bounds.NAME_MAX
    assert _column(t.SiteRow, "name") >= bounds.NAME_MAX
    assert _column(t.GpuClassRow, "name") >= bounds.NAME_MAX
    assert _column(t.SiteRow, "location") >= bounds.LOCATION_MAX
    assert _column(t.GpuClassRow, "code") >= bounds.CODE_MAX
    assert _column(t.TierRow, "code") >= bounds.CODE_MAX
    assert _column(t.OrderRow, "client_order_id") >= bounds.CLIENT_ORDER_ID_MAX
    for name in ("pue", "green_share", "emission_factor"):
        assert _column(t.SiteRow, name) >= bounds.SITE_DECIMAL_MAX
    assert _column(t.HardwareRow, "vendor") >= VENDOR_MAX
    assert _column(t.HardwareRow, "model") >= MODEL_NAME_MAX
    assert _column(t.HardwareRow, "id") >= MODEL_ID_MAX
    assert _column(t.PoolRow, "hardware_id") >= MODEL_ID_MAX
    # an instrument's symbol: the longest tier code and a window's start hour
    assert _column(t.InstrumentRow, "symbol") >= bounds.CODE_MAX + len("-20261122T10")


def _hardware(**change: Any) -> AddHardware:
    fields: dict[str, Any] = {
        "vendor": "Acme", "model": "Z9", "figures": {"fp16": FigureIn("100")},
        "memory_gb": "64", "memory_bandwidth_gbs": "2000", "tdp_w": "300", "quality": "U",
        "source": "datasheet", "id": "acme-z9",
    }  # fmt: skip
    fields.update(change)
    return AddHardware(**fields)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"vendor": "V" * 61}, "invalid_name"),  # HardwareRow.vendor is String(60)
        ({"model": "M" * 121}, "invalid_name"),  # HardwareRow.model is String(120)
        ({"id": "a" * 81}, "invalid_model_id"),  # HardwareRow.id is String(80)
        ({"id": None, "vendor": "V" * 40, "model": "M" * 41}, "invalid_model_id"),  # its slug
        ({"source": "s" * 501}, "invalid_source"),
        ({"figures": {"fp16": FigureIn("1E+31")}}, "invalid_decimal"),
        ({"tdp_w": "1E-31"}, "invalid_decimal"),
    ],
)
def test_hardware_texts_and_figures_are_bounded(change: dict[str, Any], code: str) -> None:
    m = make_market()
    assert m.reject(_hardware(**change)) == code
    m.apply(_hardware())  # the same within bounds is accepted


@pytest.mark.parametrize(
    ("op", "code"),
    [
        (CreateGpuClass("Z", "N" * 101, "fp16", "1"), "invalid_name"),
        (CreateGpuClass("Z", " ", "fp16", "1"), "invalid_name"),
        (CreateGpuClass("Z", "Zed", "fp16", "1", vendors=["V" * 61]), "invalid_class"),
        (CreateGpuClass("Z", "Zed", "fp16", "1", vendors=["NVIDIA"] * 257), "invalid_class"),
        (CreateGpuClass("Z", "Zed", "fp16", "1", models=[H100] * 257), "invalid_class"),
        (CreateGpuClass("Z" * 33, "Zed", "fp16", "1"), "invalid_code"),
        (create_tier("Z-1", regions=["east", "east"]), "invalid_region"),
    ],
)
def test_class_and_tier_texts_are_bounded(op: Operation, code: str) -> None:
    assert make_market().reject(op) == code


@pytest.mark.parametrize(
    ("field", "long"),
    [
        ("pue", "1.2500000000000000001"),
        ("green_share", "0.10000000000000000001"),
        ("emission_factor", "0.50000000000000000001"),
    ],
)
def test_a_site_figure_longer_than_its_column_is_refused(field: str, long: str) -> None:
    """SiteRow keeps each as String(20): such a figure passed the 40-character bound and
    would have failed the projection's write on PostgreSQL, stopping the writer."""
    m = make_market()
    values = {"pue": "1.25", "green_share": "0", "emission_factor": "0.5", field: long}
    assert len(long) > 20
    assert m.reject(RegisterSite(m.seller, "sh-2", "east", **values)) == "invalid_decimal"
    values[field] = long[:20]
    m.apply(RegisterSite(m.seller, "sh-2", "east", **values))
