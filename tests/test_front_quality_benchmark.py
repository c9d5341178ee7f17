"""The front-quality benchmark's comparison at equal training FLOPs."""

from __future__ import annotations

import argparse
import importlib

import numpy as np
import optuna
import pytest

from nas.report.front_quality import hypervolume

MLP = {  # 6 inputs -> 8 -> 8 -> 5 classes at its largest: 173 params
    "_target_": "search_spaces.mlp.MLPSpace",
    "depth": [1, 2],
    "widths": [4, 8],
    "activations": ["relu"],
    "sparsity": {"low": 0.5, "high": 0.9, "step": 0.1, "allocation": "per_layer"},
}

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


@pytest.fixture(scope="module")
def bench():
    """The script as the package module `benchmarks.front_quality` (the name mutation
    testing follows its functions by)."""
    return importlib.import_module("benchmarks.front_quality")


def study_of(
    supernet_flops: float | None,
    *trials: tuple[float, int, float],
    storage: str | None = None,
    name: str | None = None,
) -> optuna.Study:
    """A study of trials (accuracy, nonzero params, training FLOPs), each of 1 epoch and
    100 FLOPs, after a supernet of `supernet_flops` (None: no supernet); in memory unless
    `storage` and `name` are given."""
    study = optuna.create_study(
        storage=storage, study_name=name, directions=["maximize", "minimize", "minimize"]
    )
    study.set_metric_names(["accuracy", "nonzero_params", "flops"])
    if supernet_flops is not None:
        study.set_user_attr("supernet", {"train_flops": supernet_flops, "train_epochs": 4})
    for accuracy, params, flops in trials:
        study.add_trial(
            optuna.trial.create_trial(
                values=[accuracy, params, 100],
                user_attrs={"train_epochs": 1, "train_flops": flops},
            )
        )
    return study


def test_a_flops_budget_keeps_the_trials_that_ran_within_it_after_the_supernet(bench):
    study = study_of(100.0, (0.5, 10, 100.0), (0.6, 20, 50.0), (0.99, 30, 100.0))
    whole = bench.measure(study, (1000, 1000))
    assert (whole.trials, whole.train_flops, whole.epochs) == (3, 350.0, 7)
    cut = bench.measure(study, (1000, 1000), flops_budget=300.0)
    assert (cut.trials, cut.train_flops, cut.epochs) == (2, 250.0, 6)
    assert cut.best(0.10) == pytest.approx(0.6)  # the third, most accurate trial came too late
    assert cut.hypervolume < whole.hypervolume
    assert bench.measure(study, (1000, 1000), flops_budget=99.0).trials == 0


def test_trials_recorded_without_training_flops_all_count(bench):
    study = study_of(None, (0.5, 10, float("nan")), (0.6, 20, float("nan")))
    assert bench.measure(study, (1000, 1000)).trials == 2


def test_equal_flops_cuts_every_method_of_a_seed_at_its_cheapest(bench):
    studies = {
        "cheap": [study_of(None, (0.9, 10, 100.0), (0.9, 20, 100.0))],
        "costly": [study_of(150.0, (0.9, 10, 40.0), (0.95, 20, 40.0), (0.97, 30, 40.0))],
    }
    reference = [(1000, 1000)]
    measured = {method: [bench.measure(rows[0], reference[0])] for method, rows in studies.items()}
    equal = bench.at_equal_flops(studies, measured, reference)
    assert equal["cheap"][0].trials == 2
    assert (equal["costly"][0].trials, equal["costly"][0].train_flops) == (1, 190.0)


def test_the_first_n_trials_are_measured_as_if_the_study_had_stopped_there(bench):
    study = study_of(100.0, (0.5, 10, 100.0), (0.6, 20, 50.0), (0.99, 30, 100.0))
    first_two = bench.measure(study, (1000, 1000), max_trials=2)
    assert (first_two.trials, first_two.train_flops, first_two.epochs) == (2, 250.0, 6)
    assert first_two.best(0.10) == pytest.approx(0.6)
    rows = bench.by_trial_count({"search": [study]}, [(1000, 1000)], [1, 2, 5])
    assert rows.splitlines()[0] == "| method | first 1 | first 2 | first 5 |"
    one, two, all_three = (
        bench.measure(study, (1000, 1000), max_trials=n).hypervolume for n in (1, 2, 3)
    )
    assert rows.splitlines()[2] == f"| search | {one:.4f} | {two:.4f} | {all_three:.4f} (3) |"


def test_the_pooled_regret_is_that_of_every_methods_trials_of_a_seed_together(bench):
    seeds = [
        {"a": study_of(None, (0.9, 100, 1.0)), "b": study_of(None, (0.6, 10, 1.0))},
        {"a": study_of(None, (0.8, 100, 1.0)), "b": study_of(None, (0.95, 500, 1.0))},
    ]
    results = {
        method: [bench.measure(seed[method], (1000, 1000)) for seed in seeds] for method in "ab"
    }
    best = bench.best_known(results)
    pooled = [
        best - hypervolume(np.concatenate([results[m][i].points for m in "ab"])) for i in range(2)
    ]
    assert bench.pooled_regret(results, best) == pytest.approx(sum(pooled) / 2)
    assert pooled[0] > 0, "the second seed's 0.95 is in the best front known, not the first's"
    for method in "ab":  # together, not the better study of the two
        assert pooled[0] < best - results[method][0].hypervolume


def test_a_method_at_a_tag_names_that_runs_studies(bench):
    args = argparse.Namespace(tag="new", search_tag=None)
    assert bench.resolve("search", 30, args) == ("search", "new-s30-search")
    assert bench.resolve("search@h60", 30, args) == ("search", "h60-s30-search")
    assert bench.resolve("lamp@h60", 30, args) == ("lamp", "h60-s30-lamp")
    args.search_tag = "searches"
    assert bench.resolve("search", 30, args) == ("search", "searches-s30-search")
    assert bench.resolve("lamp", 30, args) == ("lamp", "new-s30-lamp")


def test_an_unknown_method_is_refused_with_or_without_a_tag(bench, capsys):
    for entry in ("bogus", "bogus@h60"):
        with pytest.raises(SystemExit) as stopped:
            bench.main(["--methods", "search", entry])
        assert stopped.value.code == 2
        assert "unknown method 'bogus'" in capsys.readouterr().err


def test_a_pair_at_equal_flops_is_cut_at_the_cheaper_of_the_two_whatever_else_ran(bench):
    studies = {
        "first": [study_of(None, (0.9, 10, 100.0), (0.95, 20, 100.0), (0.97, 30, 100.0))],
        "other": [study_of(None, (0.9, 10, 100.0), (0.96, 20, 150.0))],
        "cheapest": [study_of(None, (0.5, 10, 100.0))],
    }
    reference = [(1000, 1000)]
    measured = {method: [bench.measure(rows[0], reference[0])] for method, rows in studies.items()}
    pairs = bench.pairs_at_equal_flops(studies, measured, reference, best=1.0)
    first, other = pairs["other"]
    assert (first[0].trials, other[0].trials) == (2, 2), "cut at the other's 250, not at 100"
    assert first[0].regret == pytest.approx(1.0 - first[0].hypervolume)
    first, cheapest = pairs["cheapest"]
    assert (first[0].trials, cheapest[0].trials) == (1, 1)
    assert list(pairs) == ["other", "cheapest"]


def test_the_regret_ratio_is_of_the_mean_regrets_as_the_target_reads(bench):
    def measured(regret: float):
        return bench.Measured(1 - regret, 60, 0, 1, None, regret)

    first = [measured(0.01), measured(0.03)]
    other = [measured(0.02), measured(0.03)]  # per seed 2x and 1x: their mean would be 1.50x
    table = bench.paired({"other": (first, other)}, "first", [30, 31])
    assert table.splitlines()[-1] == "| mean regret over first's | 1.25x |"


def test_known_studies_of_another_budget_join_the_best_front_known(bench, tmp_path):
    reference = [(1000, 1000)]
    storage = f"sqlite:///{bench.storage_file(tmp_path, 30)}"
    study_of(None, (0.99, 10, 1.0), storage=storage, name="h120-s30-search")
    args = argparse.Namespace(seeds=[30], tag="h60", search_tag=None)
    (known,) = bench.known_points(["search@h120"], args, tmp_path, reference)
    assert known.tolist() == [[pytest.approx(0.01), 0.01, 0.1]]
    results = {"search": [bench.measure(study_of(None, (0.9, 100, 1.0)), reference[0])]}
    both = np.concatenate([results["search"][0].points, known])
    assert bench.best_known(results, [known]) == pytest.approx(hypervolume(both))
    assert bench.best_known(results, [known]) > bench.best_known(results)


def test_a_known_study_that_is_not_there_ends_the_benchmark_in_one_line(bench, tmp_path):
    args = argparse.Namespace(seeds=[30], tag="h60", search_tag=None)
    with pytest.raises(SystemExit) as stopped:
        bench.known_points(["two_stage@h120"], args, tmp_path, [(1000, 1000)])
    assert (
        str(stopped.value)
        == f"front_quality: --known two_stage@h120: no study 'h120-s30-two_stage' in {tmp_path}"
    )
    assert not bench.storage_file(tmp_path, 30).exists(), "only read: no file made"
    study_of(None, (0.9, 10, 1.0), storage=f"sqlite:///{bench.storage_file(tmp_path, 30)}")
    with pytest.raises(SystemExit, match="no study 'h120-s30-two_stage'"):
        bench.known_points(["two_stage@h120"], args, tmp_path, [(1000, 1000)])


def test_the_paired_table_states_first_minus_other_per_seed_mean_se_and_seeds_ahead(bench):
    """Hypervolumes set by hand, 0.55 the best front's: every number of the table worked
    out apart (differences, their mean, standard error, the seeds the first is ahead on,
    and the ratio of mean regrets)."""

    def rows(*hypervolumes: float):
        return [bench.Measured(hv, 60, 0, 1, None, 0.55 - hv) for hv in hypervolumes]

    first, other, third = rows(0.50, 0.40, 0.30), rows(0.45, 0.42, 0.20), rows(0.52, 0.30, 0.31)
    pairs = bench.pairs_of({"first": first, "other": other, "third": third})
    assert list(pairs) == ["other", "third"]
    assert pairs["other"][0] is first and pairs["other"][1] is other
    assert pairs["third"][0] is first and pairs["third"][1] is third
    # other: +0.05, -0.02, +0.10: mean 0.0433, sd 0.0603, SE 0.0348, ahead on 2 of 3
    # third: -0.02, +0.10, -0.01: mean 0.0233, sd 0.0666, SE 0.0384, ahead on 1 of 3
    # mean regrets: first's 0.15, other's 0.1933 (1.29x), third's 0.1733 (1.16x)
    assert bench.paired(pairs, "first", [30, 31, 32]).splitlines() == [
        "| seed | first − other | first − third |",
        "| --- | --- | --- |",
        "| 30 | +0.0500 | -0.0200 |",
        "| 31 | -0.0200 | +0.1000 |",
        "| 32 | +0.1000 | -0.0100 |",
        "| mean | +0.0433 ± 0.0348 SE, 2/3 | +0.0233 ± 0.0384 SE, 1/3 |",
        "| mean regret over first's | 1.29x | 1.16x |",
    ]


def test_pairs_at_equal_flops_give_each_seed_its_own_cut_and_sign(bench):
    """Two seeds, the first method the costlier in one and the cheaper in the other: each
    seed is cut at its cheaper study's FLOPs. Every study keeps one trial, of 100 of the
    reference's 1000 params and FLOPs: hypervolume = accuracy x 0.9 x 0.9."""
    first = [
        study_of(None, (0.9, 100, 100.0), (0.95, 500, 100.0)),  # 200 FLOPs: cut at 150
        study_of(None, (0.6, 100, 50.0)),  # 50 FLOPs
    ]
    other = [
        study_of(None, (0.7, 100, 150.0)),  # 150 FLOPs
        study_of(None, (0.7, 100, 50.0), (0.99, 100, 50.0)),  # 100 FLOPs: cut at 50
    ]
    studies = {"first": first, "other": other}
    references = [(1000, 1000)] * 2
    measured = {
        method: [bench.measure(study, (1000, 1000)) for study in rows]
        for method, rows in studies.items()
    }
    pairs = bench.pairs_at_equal_flops(studies, measured, references, best=1.0)
    cut_first, cut_other = pairs["other"]
    assert [row.trials for row in cut_first] == [1, 1]
    assert [row.trials for row in cut_other] == [1, 1]
    assert [row.train_flops for row in cut_first] == [100.0, 50.0]
    assert [row.train_flops for row in cut_other] == [150.0, 50.0]
    assert [row.hypervolume for row in cut_first] == pytest.approx([0.729, 0.486])
    assert [row.hypervolume for row in cut_other] == pytest.approx([0.567, 0.567])
    # +0.162 and -0.081: mean 0.0405, SE 0.1215, ahead on 1 of 2; regrets 0.3925 and 0.433
    assert bench.paired(pairs, "first", [30, 31]).splitlines()[2:] == [
        "| 30 | +0.1620 |",
        "| 31 | -0.0810 |",
        "| mean | +0.0405 ± 0.1215 SE, 1/2 |",
        "| mean regret over first's | 1.10x |",
    ]


def test_the_accuracy_at_a_size_table_averages_the_seeds_that_found_a_network_that_small(bench):
    nan = float("nan")

    def seed(at_half_percent, at_one_percent):
        at_size = {(size, share): (0.9, 0.8) for size in bench.SIZES for share in bench.SHARES}
        at_size[("nonzero_params", 0.005)] = at_half_percent
        at_size[("nonzero_params", 0.01)] = at_one_percent
        return bench.Measured(0.9, 60, 0, 1, None, at_size=at_size)

    results = {"search": [seed((0.70, 0.60), (0.80, 0.75)), seed((nan, nan), (0.90, 0.85))]}
    params, flops = bench.at_size_tables(results).split("\n\n")
    cells = params.splitlines()[2].split(" | ")
    assert cells[1] == "0.700 (test 0.600) [1/2]"  # one seed found none that small
    assert cells[2] == "0.850 ± 0.071 (test 0.800)"
    assert results["search"][1].best(0.005) == 0.0
    assert "≤0.5% FLOPs" in flops.splitlines()[0]


def test_a_seed_where_the_two_tie_is_not_counted_ahead(bench):
    """Equal hypervolumes (two studies cut to the same trials) count for neither."""
    first = [bench.Measured(hv, 60, 0, 1, None, 0.75 - hv) for hv in (0.5, 0.75)]
    other = [bench.Measured(0.5, 60, 0, 1, None, 0.25)] * 2
    table = bench.paired(bench.pairs_of({"first": first, "other": other}), "first", [30, 31])
    # differences 0 and +0.25: mean 0.125, sd 0.1768, SE 0.125; ahead on the second only
    assert table.splitlines()[2:5] == [
        "| 30 | +0.0000 |",
        "| 31 | +0.2500 |",
        "| mean | +0.1250 ± 0.1250 SE, 1/2 |",
    ]


def test_read_reports_on_the_studies_there_and_runs_none(bench, tmp_path, capsys):
    storage = f"sqlite:///{bench.storage_file(tmp_path, 30)}"
    for name, accuracy in (("a-s30-search", 0.9), ("b-s30-search", 0.8)):
        study = study_of(None, storage=storage, name=name)
        for key, value in (("space_config", MLP), ("in_shape", [1, 3, 2]), ("n_classes", 5)):
            study.set_user_attr(key, value)
        attrs = {"train_epochs": 1, "train_flops": 1.0, "test_accuracy": accuracy}
        study.add_trial(optuna.trial.create_trial(values=[accuracy, 10, 100], user_attrs=attrs))
    out = str(tmp_path)
    # the second study is another variant's (its own overrides): read, never resumed
    assert bench.main(["--read", "--seeds", "30", "--tag", "a", "--out", out, "--methods",
                       "search", "search@b", "--", "space.widths=[4]"]) == 0  # fmt: skip
    report = capsys.readouterr().out
    # one point each at 10 of 173 params and 100 of 304 FLOPs: 0.1 x 163/173 x 204/304
    assert "| 30 | +0.0632 |" in report.splitlines()
    for name in ("a-s30-search", "b-s30-search"):
        assert len(optuna.load_study(study_name=name, storage=storage).trials) == 1
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--read", "--seeds", "31", "--tag", "a", "--out", out, "--methods", "search"])
    assert str(stopped.value) == f"front_quality: --read search: no study 'a-s31-search' in {out}"
    assert not bench.storage_file(tmp_path, 31).exists(), "only read: no file made"
