"""Report figures: a line plot and a heatmap are written as real PNG files from runs."""

from __future__ import annotations

import pandas as pd

from recsec.harness import plots, report


def runs() -> pd.DataFrame:
    rows = []
    for attack, base in (("ptq", 0.3), ("ptaq", 0.5)):
        for n in (5, 10, 25):
            for seed in (0, 1):
                rows.append({"tags.attack": attack, "tags.defense": f"popular_mix(n={n})", "tags.list_length": str(n),
                             "tags.seed": str(seed), "metrics.agr_at_10": base - n / 100 + seed / 100})
    return pd.DataFrame(rows)


def test_line_plot_and_heatmap_write_png_files(tmp_path):
    frame = runs()
    for path in (plots.line_plot(frame, "agr_at_10", "list_length", "attack", tmp_path / "line.png"),
                 plots.heatmap(frame, "agr_at_10", "attack", "defense", tmp_path / "sub" / "heat.png")):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_numeric_axis_values_are_ordered_as_numbers():
    assert plots._ordered(["10", "5", "all", "25", "0.5"]) == ["0.5", "5", "10", "25", "all"]


def test_aggregate_gives_mean_std_and_count_over_seeds():
    agg = report.aggregate(runs(), "agr_at_10", ["attack", "list_length"])
    row = agg[(agg.attack == "ptq") & (agg.list_length == "5")].iloc[0]
    assert row["n"] == 2 and abs(row["mean"] - 0.255) < 1e-9  # seeds give 0.3 - 0.05 + {0, 0.01}


def test_tables_order_labels_naturally():
    labels = ["popular_mix(n=25)", "none", "popular_mix(n=5)", "popular_mix(n=10)"]
    assert sorted(labels, key=report.natural_key) == ["none", "popular_mix(n=5)", "popular_mix(n=10)", "popular_mix(n=25)"]


def test_summary_of_sequential_cells_shows_hit_ratio_and_blanks_what_a_defense_did_not_serve():
    rows = []
    for defense, served in (("none", 0.3), ("gro(lam=0.1)", None)):
        for seed in (0, 1):
            row = {"tags.attack": "dfme", "tags.defense": defense, "tags.seed": str(seed), "tags.list_length": "100",
                   "metrics.agr_at_20": 0.4 + seed / 100, "metrics.hr_at_20": 0.14}
            if served is not None:
                row.update({"metrics.agr_served_at_20": served, "metrics.defended_hr_at_20": 0.14})
            rows.append(row)
    table = report.summary(pd.DataFrame(rows), 20)
    assert list(table.columns) == ["row", "attack", "defense", "agr_at_20", "agr_served_at_20", "hr_at_20",
                                   "defended_hr_at_20", "seeds"]
    gro = table[table.defense == "gro(lam=0.1)"].iloc[0]
    assert gro["agr_served_at_20"] == "" and gro["seeds"] == 2


def test_summary_of_visual_cells_leads_with_the_attacked_class_hit_ratio():
    rows = [{"tags.attack": "pgd(eps=8)", "tags.defense": defense, "tags.seed": "0", "tags.list_length": "20",
             "metrics.chr_at_20_clean": 0.001, "metrics.chr_at_20_attacked": attacked,
             "metrics.targeted_success_rate": 1.0, "metrics.recall_at_20": 0.49}
            for defense, attacked in (("none", 0.02), ("jpeg", 0.0006))]
    table = report.summary(pd.DataFrame(rows), 20)
    assert list(table.columns) == ["row", "attack", "defense", "chr_at_20_clean", "chr_at_20_attacked",
                                   "targeted_success_rate", "recall_at_20", "seeds"]
    assert str(table.set_index("defense").loc["jpeg", "chr_at_20_attacked"]) == "0.0006"  # one seed: no interval
