from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest

from exchange.products import Precision
from pricing import (
    Catalog,
    FigureSubmission,
    ModelSubmission,
    PricingError,
    Quality,
    build_model,
    confirm_model,
    load_builtin_catalog,
    model_slug,
    parse_quality,
    with_model,
)

F = FigureSubmission


def submission(figures: dict[Precision, FigureSubmission], **kw: object) -> ModelSubmission:
    base: dict[str, object] = {
        "vendor": "NVIDIA",
        "model": "Test Part",
        "figures": figures,
        "memory_gb": Decimal(80),
        "memory_bandwidth_gbs": Decimal(2000),
        "tdp_w": Decimal(400),
        "quality": Quality.V,
        "source": "vendor datasheet",
    }
    base.update(kw)
    return ModelSubmission(**base)  # type: ignore[arg-type]


def test_builtin_catalog_has_every_reference_model_with_a_unique_slug_id(catalog: Catalog) -> None:
    assert len(catalog) == 31
    for model_id, model in catalog.items():
        assert model.id == model_id
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", model_id)
        assert model.source and model.note.startswith("[tier ")


def test_builtin_figures_are_the_dense_reference_figures(catalog: Catalog) -> None:
    h100 = catalog["nvidia-h100-sxm5-80gb"]
    assert h100.vendor == "NVIDIA"
    assert h100.peak(Precision.FP16) == Decimal("989.4")
    assert h100.peak(Precision.FP8) == Decimal("1978.9")
    assert h100.memory_gb == 80
    assert h100.memory_bandwidth_gbs == 3350
    assert h100.tdp_w == 700
    assert h100.quality is Quality.V
    assert "hpctech" in h100.source
    assert catalog["nvidia-a100-sxm4-80gb"].peak(Precision.FP16) == Decimal("312")
    assert catalog["amd-instinct-mi300x"].peak(Precision.FP16) == Decimal("1307.4")
    assert catalog["nvidia-geforce-rtx-4090"].peak(Precision.FP16) == Decimal("165.2")


def test_fp64_uses_the_matrix_peak_and_keeps_the_vector_figure(catalog: Catalog) -> None:
    h100 = catalog["nvidia-h100-sxm5-80gb"]
    assert h100.peak(Precision.FP64) == Decimal("66.9")
    assert h100.fp64_vector_tflops == Decimal("33.5")
    v100 = catalog["nvidia-v100-sxm2-32gb"]  # no matrix figure: the vector one counts
    assert v100.peak(Precision.FP64) == Decimal("7.8")


def test_unknown_figures_stay_unknown(catalog: Catalog) -> None:
    assert catalog["nvidia-a100-sxm4-80gb"].peak(Precision.FP8) is None
    assert catalog["nvidia-h100-sxm5-80gb"].peak(Precision.INT4) is None
    z100 = catalog["hygon-dcu-z100"]
    assert dict(z100.peak_tflops) == {}
    assert z100.memory_gb is None and z100.tdp_w is None
    assert catalog["nvidia-l20-48gb"].tdp_w is None


def test_quality_grades_are_parsed_from_the_note_prefix(catalog: Catalog) -> None:
    assert catalog["huawei-ascend-910b3"].quality is Quality.U
    assert catalog["hygon-dcu-k100"].quality is Quality.U  # "S/U" takes the worst
    assert catalog["nvidia-geforce-rtx-4090"].quality is Quality.S  # "V/S"
    assert catalog["huawei-ascend-910c"].quality is Quality.U  # "D/U"
    h800 = catalog["nvidia-h800-sxm5-80gb"]  # "[tier V (FP32/TDP: U)]"
    assert h800.quality is Quality.V
    assert h800.quality_of("fp32") is Quality.U
    assert h800.quality_of("tdp_w") is Quality.U
    assert h800.quality_of("fp16") is Quality.V
    assert catalog["amd-instinct-mi300x"].quality_of("tf32") is Quality.U
    assert catalog["nvidia-l40s"].quality_of("fp64") is Quality.S


def test_parse_quality_refuses_a_note_without_grade() -> None:
    with pytest.raises(PricingError) as err:
        parse_quality("Datasheet says 312")
    assert err.value.code == "missing_quality"
    assert parse_quality("[tier V (spec revisions differ)] x") == (Quality.V, {})


def test_u_figures_are_billable_only_after_confirmation(catalog: Catalog) -> None:
    ascend = catalog["huawei-ascend-910b3"]
    assert ascend.peak_pf(Precision.FP16) is not None
    assert ascend.billable_peak_pf(Precision.FP16) is None
    confirmed = confirm_model(catalog, "huawei-ascend-910b3")["huawei-ascend-910b3"]
    assert confirmed.billable_peak_pf(Precision.FP16) == Fraction("0.313")
    h800 = catalog["nvidia-h800-sxm5-80gb"]
    assert h800.billable_peak_pf(Precision.FP16) is not None
    assert h800.billable_peak_pf(Precision.FP32) is None


def test_confirming_returns_a_new_catalog_and_leaves_the_old_one(catalog: Catalog) -> None:
    new = confirm_model(catalog, "huawei-ascend-910b3")
    assert new["huawei-ascend-910b3"].confirmed
    assert not catalog["huawei-ascend-910b3"].confirmed
    with pytest.raises(PricingError) as err:
        confirm_model(catalog, "no-such-model")
    assert err.value.code == "unknown_model"


def test_model_slug_is_stable_and_lowercase() -> None:
    assert model_slug("NVIDIA", "H100 SXM5 80GB") == "nvidia-h100-sxm5-80gb"
    assert model_slug("Hygon", "DCU K100_AI (深算二号 AI版)") == "hygon-dcu-k100-ai"


def test_adding_a_model_halves_figures_declared_with_sparsity(catalog: Catalog) -> None:
    model = build_model(
        submission(
            {
                Precision.FP16: F(Decimal("1978.9"), with_sparsity=True),
                Precision.FP32: F(Decimal("66.9")),
            },
            model="H100 NVL 94GB",
        ),
        catalog,
    )
    assert model.id == "nvidia-h100-nvl-94gb"
    assert model.peak(Precision.FP16) == Decimal("989.45")
    assert model.peak(Precision.FP32) == Decimal("66.9")
    assert with_model(catalog, model)[model.id] is model


@pytest.mark.parametrize(
    ("figures", "code"),
    [
        ({Precision.FP16: F(Decimal(0))}, "non_positive_peak"),
        ({Precision.FP16: F(Decimal(-5))}, "non_positive_peak"),
        ({Precision.FP16: F(Decimal(500)), Precision.FP8: F(Decimal(400))}, "fp16_above_fp8"),
        ({Precision.FP16: F(Decimal(500)), Precision.INT8: F(Decimal(400))}, "fp16_above_int8"),
        ({Precision.FP16: F(Decimal(500)), Precision.BF16: F(Decimal(240))}, "fp16_bf16_mismatch"),
        ({Precision.FP16: F(Decimal(100)), Precision.BF16: F(Decimal(201))}, "fp16_bf16_mismatch"),
        (
            {Precision.FP16: F(Decimal(500)), Precision.FP32: F(Decimal(10))},
            "implausible_fp16_fp32_ratio",
        ),
        (
            {Precision.FP16: F(Decimal(300), accumulation=Precision.FP16)},
            "fp16_accumulation_figure",
        ),
    ],
)
def test_contradictory_figures_are_refused_with_a_stable_code(
    catalog: Catalog, figures: dict[Precision, FigureSubmission], code: str
) -> None:
    with pytest.raises(PricingError) as err:
        build_model(submission(figures), catalog)
    assert err.value.code == code
    assert err.value.message


def test_fp16_and_bf16_exactly_twice_apart_are_accepted(catalog: Catalog) -> None:
    model = build_model(
        submission({Precision.FP16: F(Decimal(100)), Precision.BF16: F(Decimal(200))}), catalog
    )
    assert model.peak(Precision.BF16) == 200


@pytest.mark.parametrize(
    ("vendor", "name", "precision", "tflops", "code"),
    [
        ("NVIDIA", "A100 PCIe 80GB", Precision.FP16, "600", "sparse_figure_as_dense"),
        ("NVIDIA", "A100 SXM4 40GB", Precision.BF16, "624", "sparse_figure_as_dense"),
        ("NVIDIA", "GeForce RTX 4090 D", Precision.FP16, "330", "fp16_accumulation_figure"),
        ("NVIDIA", "RTX 4090", Precision.FP16, "330.3", "fp16_accumulation_figure"),
        ("AMD", "Instinct MI300X OAM", Precision.FP16, "2614.9", "sparse_figure_as_dense"),
        ("NVIDIA", "H800 PCIe", Precision.FP16, "1979", "sparse_figure_as_dense"),
    ],
)
def test_marketing_traps_do_not_enter_as_dense_peaks(
    catalog: Catalog, vendor: str, name: str, precision: Precision, tflops: str, code: str
) -> None:
    with pytest.raises(PricingError) as err:
        build_model(submission({precision: F(Decimal(tflops))}, vendor=vendor, model=name), catalog)
    assert err.value.code == code


def test_a_trap_figure_declared_as_sparse_enters_halved(catalog: Catalog) -> None:
    model = build_model(
        submission({Precision.FP16: F(Decimal(624), with_sparsity=True)}, model="A100 PCIe 80GB"),
        catalog,
    )
    assert model.peak(Precision.FP16) == 312


def test_adding_refuses_a_duplicate_id_and_a_missing_source(catalog: Catalog) -> None:
    with pytest.raises(PricingError) as err:
        build_model(submission({}, model="H100 SXM5 80GB"), catalog)
    assert err.value.code == "duplicate_model_id"
    with pytest.raises(PricingError) as err:
        build_model(submission({}, source="  "), catalog)
    assert err.value.code == "missing_source"


def test_added_u_model_needs_confirmation(catalog: Catalog) -> None:
    model = build_model(submission({Precision.FP16: F(Decimal(200))}, quality=Quality.U), catalog)
    assert model.billable_peak_pf(Precision.FP16) is None
    new_catalog = confirm_model(with_model(catalog, model), model.id)
    assert new_catalog[model.id].billable_peak_pf(Precision.FP16) is not None


def test_loading_twice_gives_equal_catalogs() -> None:
    assert load_builtin_catalog() == load_builtin_catalog()
