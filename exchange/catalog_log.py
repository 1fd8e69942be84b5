"""The hardware catalog as the operation log carries it.

An exchange's catalog is state like any other, so it comes from the log: the first
operation of an exchange installs the whole packaged catalog (:mod:`exchange.genesis`),
and an upgrade that ships newer figures installs them as another operation. The entries
are exact: each figure is the text of its ``Decimal`` (``str`` keeps every digit and the
exponent, and ``Decimal`` reads it back equal and alike), with the model's sources and
quality grades, so replaying the log rebuilds the catalog the exchange had, whatever the
packaged file says by then.
"""

from __future__ import annotations

from decimal import Decimal

from exchange.decimals import optional_decimal, parse_decimal
from exchange.operations import CatalogModel, InstallCatalog
from exchange.products import Precision
from exchange.records import Rejected
from exchange.refusals import Refusal
from pricing import AcceleratorModel, Catalog, PricingError, Quality, catalog_model

__all__ = ["catalog_entry", "entry_model", "install_catalog"]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def catalog_entry(model: AcceleratorModel) -> CatalogModel:
    """A catalog model as an exact log entry."""
    return CatalogModel(
        id=model.id,
        vendor=model.vendor,
        model=model.model,
        peak_tflops={p.value: str(v) for p, v in sorted(model.peak_tflops.items())},
        memory_gb=_text(model.memory_gb),
        memory_bandwidth_gbs=_text(model.memory_bandwidth_gbs),
        tdp_w=_text(model.tdp_w),
        quality=model.quality.value,
        figure_quality={k: q.value for k, q in sorted(model.figure_quality.items())},
        confirmed=model.confirmed,
        fp64_vector_tflops=_text(model.fp64_vector_tflops),
        source=model.source,
        note=model.note,
    )


def install_catalog(catalog: Catalog) -> InstallCatalog:
    """The operation that installs ``catalog``, its models in id order."""
    return InstallCatalog([catalog_entry(catalog[i]) for i in sorted(catalog)])


def _precision(text: str) -> Precision:
    try:
        return Precision(text)
    except ValueError as exc:
        raise Refusal.INVALID_PRECISION.reject(precision=repr(text[:20])) from exc


def _quality(text: str) -> Quality:
    try:
        return Quality(text)
    except ValueError as exc:
        raise Refusal.INVALID_QUALITY.reject() from exc


def entry_model(entry: CatalogModel) -> AcceleratorModel:
    """The catalog model of a log entry, checked as every catalog entry is; refuses with
    :class:`Rejected` and the pricing package's codes."""
    where = f"model {entry.id[:80]!r}"
    peaks = {
        _precision(p): parse_decimal(v, f"{where} peak_tflops")
        for p, v in entry.peak_tflops.items()
    }
    grades = {name: _quality(grade) for name, grade in entry.figure_quality.items()}
    try:
        return catalog_model(
            id=entry.id,
            vendor=entry.vendor,
            model=entry.model,
            peak_tflops=peaks,
            memory_gb=optional_decimal(entry.memory_gb, f"{where} memory_gb"),
            memory_bandwidth_gbs=optional_decimal(
                entry.memory_bandwidth_gbs, f"{where} memory_bandwidth_gbs"
            ),
            tdp_w=optional_decimal(entry.tdp_w, f"{where} tdp_w"),
            quality=_quality(entry.quality),
            figure_quality=grades,
            confirmed=entry.confirmed,
            fp64_vector_tflops=optional_decimal(
                entry.fp64_vector_tflops, f"{where} fp64_vector_tflops"
            ),
            source=entry.source,
            note=entry.note,
        )
    except PricingError as exc:
        raise Rejected(exc.code, exc.message) from exc
