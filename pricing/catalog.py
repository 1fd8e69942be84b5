"""Hardware catalog: dense peak figures per accelerator model, with source and quality.

Figures are exact ``Decimal`` TFLOPS (TOPS for integer precisions) exactly as the source
states them; unknown figures are ``None`` and stay unknown. Each model carries a source
quality grade parsed from its note (``[tier V]``, ``[tier S/U]``, ``[tier V (FP32/TDP: U)]``):
V vendor document, S secondary source, D derived by arithmetic, U unverified. A figure
graded U is not billable until an admin confirms the model.

Adding a model goes through :func:`build_model`, which normalises sparse figures (halved)
and refuses figures that contradict each other or match a known marketing trap.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from importlib import resources
from types import MappingProxyType

from exchange.products import Precision
from exchange.refusals import Refusal, refusal_of
from pricing.errors import PricingError

__all__ = [
    "FIGURE_FIELDS",
    "FP16_TO_FP32_RATIO_MAX",
    "KNOWN_TRAPS",
    "MODEL_ID_MAX",
    "MODEL_NAME_MAX",
    "NOTE_MAX",
    "SOURCE_MAX",
    "VENDOR_MAX",
    "AcceleratorModel",
    "Catalog",
    "FigureSubmission",
    "KnownTrap",
    "ModelSubmission",
    "Quality",
    "build_model",
    "catalog_model",
    "confirm_model",
    "load_builtin_catalog",
    "model_slug",
    "packaged_catalog_text",
    "parse_catalog",
    "parse_quality",
    "with_model",
    "with_models",
]

#: Longest texts of an entry: the database columns that keep them (id 80, vendor 60,
#: model 120), and bounds for the free texts kept in a column without one.
MODEL_ID_MAX = 80
VENDOR_MAX = 60
MODEL_NAME_MAX = 120
SOURCE_MAX = 500
NOTE_MAX = 1000


class Quality(StrEnum):
    """Source quality of a figure, best first."""

    V = "V"  # vendor document or a verbatim copy of its table
    S = "S"  # reputable press or secondary source
    D = "D"  # derived by arithmetic from V or S figures
    U = "U"  # unverified or conflicting: billable only once an admin confirms

    @property
    def rank(self) -> int:
        """0 for the best grade (V), 3 for the worst (U)."""
        return "VSDU".index(self.value)

    @staticmethod
    def worst(grades: list[Quality]) -> Quality:
        return max(grades, key=lambda q: q.rank)


#: Names a per-figure quality override may use: the precisions plus the physical figures.
FIGURE_FIELDS: tuple[str, ...] = (
    *(p.value for p in Precision),
    "memory_gb",
    "memory_bandwidth_gbs",
    "tdp_w",
)

#: How notes name figures inside a quality override, e.g. ``[tier V (FP32/TDP: U)]``.
_NOTE_FIELD_NAMES: Mapping[str, str] = {
    **{p.value: p.value for p in Precision},
    "tdp": "tdp_w",
    "mem": "memory_gb",
    "memory": "memory_gb",
    "bw": "memory_bandwidth_gbs",
    "bandwidth": "memory_bandwidth_gbs",
}

_TIER_RE = re.compile(r"^\s*\[tier\s+([VSDU](?:/[VSDU])*)\s*(?:\(([^)]*)\))?\s*\]")


def parse_quality(note: str) -> tuple[Quality, dict[str, Quality]]:
    """Parse the ``[tier X]`` prefix of a note into (model grade, per-figure overrides).

    ``V/S`` and ``S/U`` mean the figures are of mixed standing: the model takes the worst
    grade. A parenthesis such as ``(FP32/TDP: U)`` grades the named figures; free text in
    the parenthesis (``(spec revisions differ)``) grades nothing.
    """
    m = _TIER_RE.match(note)
    if m is None:
        raise PricingError(Refusal.MISSING_QUALITY, note=repr(note[:40]))
    grade = Quality.worst([Quality(g) for g in m.group(1).split("/")])
    overrides: dict[str, Quality] = {}
    detail = m.group(2)
    if detail and ":" in detail:
        names, _, value = detail.partition(":")
        value_grade = Quality.worst([Quality(g) for g in value.strip().split("/")])
        for name in names.split("/"):
            key = _NOTE_FIELD_NAMES.get(name.strip().lower())
            if key is None:
                raise PricingError(
                    Refusal.UNKNOWN_FIGURE_NAME, reason=f"unknown figure {name!r} in {detail!r}"
                )
            overrides[key] = value_grade
    return grade, overrides


@dataclass(frozen=True, slots=True)
class AcceleratorModel:
    """One accelerator model. ``peak_tflops`` holds only known, dense figures.

    For ``fp64`` the peak is the matrix (tensor) figure when the vendor publishes one, as it
    is for the 16-bit and 8-bit precisions; ``fp64_vector_tflops`` keeps the vector figure.
    """

    id: str
    vendor: str
    model: str
    peak_tflops: Mapping[Precision, Decimal]
    memory_gb: Decimal | None
    memory_bandwidth_gbs: Decimal | None
    tdp_w: Decimal | None
    quality: Quality
    figure_quality: Mapping[str, Quality] = field(default_factory=dict)
    confirmed: bool = False
    fp64_vector_tflops: Decimal | None = None
    source: str = ""
    note: str = ""

    def quality_of(self, figure: str) -> Quality:
        """Quality grade of one figure (a precision value, ``memory_gb``, ``tdp_w``...)."""
        return self.figure_quality.get(figure, self.quality)

    def peak(self, precision: Precision) -> Decimal | None:
        """Dense peak in TFLOPS at ``precision``, or None when unknown."""
        return self.peak_tflops.get(precision)

    def is_usable(self, figure: str) -> bool:
        """A figure graded U may be billed on only after an admin confirms the model."""
        return self.confirmed or self.quality_of(figure) is not Quality.U

    def billable_peak_pf(self, precision: Precision) -> Fraction | None:
        """Dense peak in PFLOPS when known and usable for billing, else None."""
        peak = self.peak(precision)
        if peak is None or not self.is_usable(precision.value):
            return None
        return Fraction(peak) / 1000

    def peak_pf(self, precision: Precision) -> Fraction | None:
        """Dense peak in PFLOPS when known (whatever its quality), else None."""
        peak = self.peak(precision)
        return None if peak is None else Fraction(peak) / 1000


#: The catalog: model id -> model. Functions return new mappings rather than mutate.
Catalog = Mapping[str, AcceleratorModel]

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def model_slug(vendor: str, model: str) -> str:
    """Stable id from vendor and model: ``("NVIDIA", "H100 SXM5 80GB")`` ->
    ``nvidia-h100-sxm5-80gb``. Parenthesised non-ASCII aliases are dropped."""
    v = vendor.split("(")[0]
    m = re.sub(r"\([^)]*[^\x00-\x7f][^)]*\)", " ", model)
    return re.sub(r"[^a-z0-9]+", "-", f"{v} {m}".lower()).strip("-")


# ---------------------------------------------------------------------------- loading

_CSV_PRECISION_COLUMNS: Mapping[Precision, str] = {
    Precision.FP32: "fp32",
    Precision.TF32: "tf32",
    Precision.BF16: "bf16",
    Precision.FP16: "fp16",
    Precision.FP8: "fp8",
    Precision.INT8: "int8",
    Precision.INT4: "int4",
}


def _decimal_or_none(text: str, column: str, model_id: str) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise PricingError(
            Refusal.INVALID_FIGURE, model_id=model_id, column=column, text=repr(text)
        ) from exc
    if not value.is_finite() or value <= 0:
        raise PricingError(
            Refusal.NON_POSITIVE_PEAK, subject=f"{model_id}: {column}", value=repr(text)
        )
    return value


def _model_from_row(row: Mapping[str, str]) -> AcceleratorModel:
    model_id = row["id"].strip()
    peaks: dict[Precision, Decimal] = {}
    for precision, column in _CSV_PRECISION_COLUMNS.items():
        value = _decimal_or_none(row[column], column, model_id)
        if value is not None:
            peaks[precision] = value
    fp64_vector = _decimal_or_none(row["fp64"], "fp64", model_id)
    fp64_matrix = _decimal_or_none(row["fp64_tensor"], "fp64_tensor", model_id)
    fp64 = fp64_matrix if fp64_matrix is not None else fp64_vector
    if fp64 is not None:
        peaks[Precision.FP64] = fp64
    grade, overrides = parse_quality(row["sparsity_note"])
    return catalog_model(
        id=model_id,
        vendor=row["vendor"].strip(),
        model=row["model"].strip(),
        peak_tflops=peaks,
        memory_gb=_decimal_or_none(row["mem_gb"], "mem_gb", model_id),
        memory_bandwidth_gbs=_decimal_or_none(row["mem_bw_gbs"], "mem_bw_gbs", model_id),
        tdp_w=_decimal_or_none(row["tdp_w"], "tdp_w", model_id),
        quality=grade,
        figure_quality=overrides,
        fp64_vector_tflops=fp64_vector,
        source=row["source"].strip(),
        note=row["sparsity_note"].strip(),
    )


def catalog_model(
    *,
    id: str,
    vendor: str,
    model: str,
    peak_tflops: Mapping[Precision, Decimal],
    memory_gb: Decimal | None,
    memory_bandwidth_gbs: Decimal | None,
    tdp_w: Decimal | None,
    quality: Quality,
    figure_quality: Mapping[str, Quality],
    confirmed: bool = False,
    fp64_vector_tflops: Decimal | None = None,
    source: str = "",
    note: str = "",
) -> AcceleratorModel:
    """A catalog entry from its exact figures, as the packaged file or the operation log
    states them, with the checks every entry passes: a lowercase slug id, a vendor and a
    model name, texts within their bounds, positive finite figures, per-figure grades that
    name figures, and peaks that do not contradict each other. Raises PricingError."""
    if len(id) > MODEL_ID_MAX or not _SLUG_RE.match(id):
        raise PricingError(Refusal.INVALID_MODEL_ID, model_id=repr(id[:40]))
    _check_name(vendor, model)
    if len(source) > SOURCE_MAX:
        raise PricingError(Refusal.INVALID_SOURCE, limit=SOURCE_MAX)
    if len(note) > NOTE_MAX:
        raise PricingError(Refusal.INVALID_NOTE, limit=NOTE_MAX)
    for precision, value in peak_tflops.items():
        if not value.is_finite() or value <= 0:
            raise PricingError(
                Refusal.NON_POSITIVE_PEAK, subject=f"{precision.value} peak", value=value
            )
    for name, figure in (
        ("memory", memory_gb),
        ("bandwidth", memory_bandwidth_gbs),
        ("tdp", tdp_w),
        ("fp64_vector", fp64_vector_tflops),
    ):
        _positive_or_none(figure, name)
    unknown = sorted(set(figure_quality) - set(FIGURE_FIELDS))
    if unknown:
        raise PricingError(Refusal.UNKNOWN_FIGURE_NAME, reason=f"no figures named {unknown}")
    _check_consistent(id, peak_tflops)
    return AcceleratorModel(
        id=id,
        vendor=vendor,
        model=model,
        peak_tflops=MappingProxyType(dict(peak_tflops)),
        memory_gb=memory_gb,
        memory_bandwidth_gbs=memory_bandwidth_gbs,
        tdp_w=tdp_w,
        quality=quality,
        figure_quality=MappingProxyType(dict(figure_quality)),
        confirmed=confirmed,
        fp64_vector_tflops=fp64_vector_tflops,
        source=source,
        note=note,
    )


def _check_name(vendor: str, model: str) -> None:
    if not vendor or not model:
        raise PricingError(Refusal.MISSING_NAME)
    if len(vendor) > VENDOR_MAX or len(model) > MODEL_NAME_MAX:
        raise PricingError(
            Refusal.INVALID_NAME,
            reason=f"a vendor is at most {VENDOR_MAX} characters, a model at most {MODEL_NAME_MAX}",
        )


def packaged_catalog_text() -> str:
    """The text of ``pricing/data/accelerators.csv``, the catalog this version ships."""
    return resources.files("pricing").joinpath("data/accelerators.csv").read_text("utf-8")


def parse_catalog(text: str) -> dict[str, AcceleratorModel]:
    """A catalog from the text of a catalog file, keyed by model id.

    Every row passes the same consistency checks as an admin-added model.
    """
    catalog: dict[str, AcceleratorModel] = {}
    for row in csv.DictReader(io.StringIO(text)):
        model = _model_from_row(row)
        if model.id in catalog:
            raise PricingError(
                Refusal.DUPLICATE_MODEL_ID, model_id=model.id, problem="appears twice"
            )
        catalog[model.id] = model
    return catalog


def load_builtin_catalog() -> dict[str, AcceleratorModel]:
    """The catalog shipped in ``pricing/data/accelerators.csv``, keyed by model id. Only a
    new exchange reads it (its first operation installs it: ``exchange.genesis``)."""
    return parse_catalog(packaged_catalog_text())


def with_model(catalog: Catalog, model: AcceleratorModel) -> dict[str, AcceleratorModel]:
    """A new catalog with ``model`` added; refuses an id already present."""
    if model.id in catalog:
        raise PricingError(Refusal.DUPLICATE_MODEL_ID, model_id=model.id, problem="already exists")
    return {**catalog, model.id: model}


def with_models(catalog: Catalog, models: list[AcceleratorModel]) -> dict[str, AcceleratorModel]:
    """A new catalog with ``models`` added, each replacing the entry of its id if there is
    one (a newer edition of the packaged catalog). Nothing is removed, and an admin's
    confirmation of a model survives a newer edition of its figures."""
    out = dict(catalog)
    for model in models:
        old = out.get(model.id)
        if old is not None and old.confirmed and not model.confirmed:
            model = replace(model, confirmed=True)
        out[model.id] = model
    return out


def confirm_model(catalog: Catalog, model_id: str) -> dict[str, AcceleratorModel]:
    """A new catalog where an admin has confirmed ``model_id``'s U-graded figures."""
    if model_id not in catalog:
        raise PricingError(Refusal.UNKNOWN_MODEL, model_id=repr(model_id))
    return {**catalog, model_id: replace(catalog[model_id], confirmed=True)}


# ---------------------------------------------------------------------------- guards

#: Densest fp16-to-fp32 ratio accepted. The catalog's densest is GB200 (2500 / 80 = 31.25);
#: a larger ratio means a sparse figure, fp16 accumulation or a unit slip (GFLOPS, TOPS).
FP16_TO_FP32_RATIO_MAX = 40


@dataclass(frozen=True, slots=True)
class KnownTrap:
    """A marketing figure known not to be a dense peak, for models matching ``pattern``."""

    code: Refusal
    pattern: str  # case-insensitive regular expression searched in "vendor model"
    precisions: frozenset[Precision]
    low_tflops: Decimal
    high_tflops: Decimal
    reason: str

    def matches(self, vendor: str, model: str, precision: Precision, tflops: Decimal) -> bool:
        return (
            precision in self.precisions
            and self.low_tflops <= tflops <= self.high_tflops
            and re.search(self.pattern, f"{vendor} {model}", re.IGNORECASE) is not None
        )


_F16 = frozenset({Precision.FP16, Precision.BF16})
_F8I8 = frozenset({Precision.FP8, Precision.INT8})

#: Figures that circulate as "peaks" but are not dense training-equivalent peaks.
KNOWN_TRAPS: tuple[KnownTrap, ...] = (
    KnownTrap(
        Refusal.SPARSE_FIGURE_AS_DENSE,
        r"\bA[18]00\b",
        _F16,
        Decimal(550),
        Decimal(650),
        "'A100 = 0.6 PFLOPS' (624 TFLOPS) is fp16/bf16 WITH sparsity; dense is 312",
    ),
    KnownTrap(
        Refusal.SPARSE_FIGURE_AS_DENSE,
        r"\bH[18]00\b",
        _F16,
        Decimal(1950),
        Decimal(2000),
        "H100/H800 SXM 1979 TFLOPS fp16/bf16 is WITH sparsity; dense is 989.4",
    ),
    KnownTrap(
        Refusal.SPARSE_FIGURE_AS_DENSE,
        r"\bH[18]00\b",
        _F8I8,
        Decimal(3900),
        Decimal(4000),
        "H100/H800 SXM 3958 fp8/int8 is WITH sparsity; dense is 1978.9",
    ),
    KnownTrap(
        Refusal.FP16_ACCUMULATION_FIGURE,
        r"\b4090\b",
        _F16,
        Decimal(320),
        Decimal(340),
        "RTX 4090 330 TFLOPS fp16 uses fp16 accumulation; fp32-accumulate dense is 165.2",
    ),
    KnownTrap(
        Refusal.FP16_ACCUMULATION_FIGURE,
        r"\b4090\b",
        frozenset({Precision.FP8}),
        Decimal(650),
        Decimal(670),
        "RTX 4090 660.6 TFLOPS fp8 uses fp16 accumulation; fp32-accumulate dense is 330.3",
    ),
    KnownTrap(
        Refusal.SPARSE_FIGURE_AS_DENSE,
        r"\b4090\b",
        frozenset({Precision.INT8}),
        Decimal(1300),
        Decimal(1340),
        "RTX 4090 '1321 AI TOPS' is int8 WITH sparsity; dense is 660.6",
    ),
    KnownTrap(
        Refusal.SPARSE_FIGURE_AS_DENSE,
        r"\bMI300X\b",
        _F16,
        Decimal(2550),
        Decimal(2650),
        "MI300X 2614.9 TFLOPS fp16/bf16 is WITH sparsity; dense is 1307.4",
    ),
    KnownTrap(
        Refusal.SPARSE_FIGURE_AS_DENSE,
        r"\bMI300X\b",
        _F8I8,
        Decimal(5150),
        Decimal(5300),
        "MI300X 5229.8 fp8/int8 is WITH sparsity; dense is 2614.9",
    ),
)


@dataclass(frozen=True, slots=True)
class FigureSubmission:
    """A peak figure as a vendor states it, with how it was measured.

    ``with_sparsity``: the figure assumes 2:4 structured sparsity; it is halved on entry.
    ``accumulation``: the accumulator precision of a tensor figure; fp16 accumulation is
    refused (its dense fp32-accumulate equivalent is not a fixed fraction across parts).
    """

    tflops: Decimal
    with_sparsity: bool = False
    accumulation: Precision | None = None


@dataclass(frozen=True, slots=True)
class ModelSubmission:
    """An admin's request to add a model. ``figures`` keys are precisions."""

    vendor: str
    model: str
    figures: Mapping[Precision, FigureSubmission]
    memory_gb: Decimal | None
    memory_bandwidth_gbs: Decimal | None
    tdp_w: Decimal | None
    quality: Quality
    source: str
    id: str | None = None
    confirmed: bool = False
    note: str = ""


def _check_consistent(model_id: str, peaks: Mapping[Precision, Decimal]) -> None:
    """Refuse peaks that contradict each other (all figures dense TFLOPS)."""
    fp16 = peaks.get(Precision.FP16)
    bf16 = peaks.get(Precision.BF16)
    fp32 = peaks.get(Precision.FP32)
    if fp16 is not None:
        for other in (Precision.FP8, Precision.INT8):
            value = peaks.get(other)
            if value is not None and fp16 > value:
                raise PricingError(
                    refusal_of(f"fp16_above_{other.value}"),
                    model_id=model_id,
                    fp16=fp16,
                    other=value,
                )
    if fp16 is not None and bf16 is not None and (fp16 > 2 * bf16 or bf16 > 2 * fp16):
        raise PricingError(Refusal.FP16_BF16_MISMATCH, model_id=model_id, fp16=fp16, bf16=bf16)
    if fp32 is not None:
        for half in (fp16, bf16):
            if half is not None and half > FP16_TO_FP32_RATIO_MAX * fp32:
                raise PricingError(
                    Refusal.IMPLAUSIBLE_FP16_FP32_RATIO,
                    model_id=model_id,
                    half=half,
                    ratio=FP16_TO_FP32_RATIO_MAX,
                    fp32=fp32,
                )


def _positive_or_none(value: Decimal | None, name: str) -> Decimal | None:
    if value is not None and (not value.is_finite() or value <= 0):
        raise PricingError(refusal_of(f"non_positive_{name}"), value=value)
    return value


def build_model(
    submission: ModelSubmission, catalog: Catalog, *, strict: bool = True
) -> AcceleratorModel:
    """Validate an admin submission and return the catalog entry; raises PricingError.

    Steps: sparse figures are halved; fp16-accumulate figures are refused; each dense
    figure is checked against :data:`KNOWN_TRAPS`; the set of figures is checked for
    contradictions (fp16 above fp8 or int8, fp16 and bf16 more than 2x apart, 16-bit above
    ``FP16_TO_FP32_RATIO_MAX`` x fp32, a zero or negative figure).
    """
    vendor, name = submission.vendor.strip(), submission.model.strip()
    if not vendor or not name:
        raise PricingError(Refusal.MISSING_NAME)
    if not submission.source.strip():
        raise PricingError(Refusal.MISSING_SOURCE)
    if strict:  # the sizes below were first bounded by this version (see ExchangeCore)
        _check_name(vendor, name)
        if len(submission.source.strip()) > SOURCE_MAX:
            raise PricingError(Refusal.INVALID_SOURCE, limit=SOURCE_MAX)
        if len(submission.note) > NOTE_MAX:
            raise PricingError(Refusal.INVALID_NOTE, limit=NOTE_MAX)
    model_id = submission.id if submission.id is not None else model_slug(vendor, name)
    if (strict and len(model_id) > MODEL_ID_MAX) or not _SLUG_RE.match(model_id):
        raise PricingError(Refusal.INVALID_MODEL_ID, model_id=repr(model_id[:40]))
    if model_id in catalog:
        raise PricingError(Refusal.DUPLICATE_MODEL_ID, model_id=model_id, problem="already exists")
    peaks: dict[Precision, Decimal] = {}
    for precision, figure in submission.figures.items():
        value = figure.tflops
        if not value.is_finite() or value <= 0:
            raise PricingError(
                Refusal.NON_POSITIVE_PEAK, subject=f"{precision.value} peak", value=value
            )
        if figure.accumulation is Precision.FP16:
            raise PricingError(
                Refusal.FP16_ACCUMULATION_FIGURE,
                reason=f"{precision.value} figure uses fp16 accumulation; "
                "give the fp32-accumulate dense figure",
            )
        dense = value / 2 if figure.with_sparsity else value
        for trap in KNOWN_TRAPS:
            if trap.matches(vendor, name, precision, dense):
                raise PricingError(trap.code, reason=trap.reason)
        peaks[precision] = dense
    _check_consistent(model_id, peaks)
    return AcceleratorModel(
        id=model_id,
        vendor=vendor,
        model=name,
        peak_tflops=MappingProxyType(peaks),
        memory_gb=_positive_or_none(submission.memory_gb, "memory"),
        memory_bandwidth_gbs=_positive_or_none(submission.memory_bandwidth_gbs, "bandwidth"),
        tdp_w=_positive_or_none(submission.tdp_w, "tdp"),
        quality=submission.quality,
        confirmed=submission.confirmed,
        fp64_vector_tflops=None,
        source=submission.source.strip(),
        note=submission.note,
    )
