"""What the chapter says, measured (study/cnn_study.py): each claim's verdict follows from the
records it names, on made-up records and on the committed ones. No Keras."""

import statistics

import pytest

from tests.support import ROOT
from study import cnn_study, records
from study.records import Trial


def record(table, row, seed, test, lr=None, params=80_266, curve=None, diverged=None, epochs=10):
    history = {"loss": [0.1] * epochs, "accuracy": [test / 100] * epochs, **({} if curve is None else {"val_accuracy": curve})}
    return Trial(table, row, seed, epochs, 128, learning_rate=lr), {
        "table": table, "row": row, "seed": seed, "epochs": epochs, "batch_size": 128, "smoke": False,
        "learning_rate": lr, "params": params, "test_accuracy": test / 100, "train_accuracy": test / 100,
        "fit_seconds": 100.0, "history": history, "diverged": diverged}


def found_with(settings):
    """{Trial: record} for ``{(table, row, lr): [test % per seed]}``."""
    return dict(record(t, r, seed, test, lr) for (t, r, lr), tests in settings.items()
                for seed, test in enumerate(tests))


BOOK, AVERAGE, STRIDED = cnn_study.BOOK, cnn_study.VARIANT["average-pooling"], cnn_study.VARIANT["strided"]


def test_a_difference_inside_the_spreads_is_no_measurable_difference():
    found = found_with({(*BOOK, None): [99.2, 99.3, 99.4], (*AVERAGE, None): [99.1, 99.2, 99.3],
                        (*STRIDED, None): [98.0, 98.1, 98.2]})
    claim = cnn_study.study(found)["pooling"]
    average, strided = claim["settings"][1], claim["settings"][2]
    assert cnn_study.compare(claim["settings"][0], average)[1] == "no measurable difference"  # 0.1 < 0.1 + 0.1
    diff, verdict = cnn_study.compare(claim["settings"][0], strided)
    assert round(diff, 6) == -1.2 and verdict == "clearly lower"  # 1.2 > 2 x (0.1 + 0.1)
    assert "AveragePooling2D(2) in place of each MaxPooling2D(2): no measurable difference" in claim["conclusion"]
    assert "clearly lower in test accuracy (-1.20 points" in claim["conclusion"]
    assert average["test"][0] == pytest.approx(99.2) and average["n"] == 3


def test_a_claim_waits_for_its_seeds():
    found = found_with({(*BOOK, None): [99.2, 99.3, 99.4], (*AVERAGE, None): [99.1, 99.2]})
    conclusion = cnn_study.study(found)["pooling"]["conclusion"]
    assert conclusion.startswith("not measured yet: ") and "(2 of 3 seeds)" in conclusion


def test_batch_normalization_at_large_rates_counts_divergence_and_the_lowest_test_accuracy():
    norm = cnn_study.VARIANT["batch-norm"]
    found = {}
    for lr in cnn_study.LEARNING_RATES:
        large = lr > 0.001
        for seed in range(3):
            found.update([record(*BOOK, seed, 11.35 if large else 99.2, lr, curve=[0.9] + [0.1135] * 9,
                                 diverged=3 if large and seed == 0 else None),
                          record(*norm, seed, 99.0 + 0.1 * seed, lr, curve=[0.95] * 10)])
    claim = cnn_study.study(found)["batch-norm"]
    _, plain, _ = claim["rates"][2]
    assert plain["diverged"] == 1 and plain["lowest_test"] == pytest.approx(11.35)
    assert claim["conclusion"].startswith("the measurement supports the claim: ")
    assert "at 0.1, BatchNormalization gives a clearly higher test accuracy" in claim["conclusion"]
    assert "1 of 3 runs without it diverged" in claim["conclusion"]
    assert "at 0.001, BatchNormalization gives no measurable difference in test accuracy" in claim["conclusion"]


def test_cnn_against_mlp_names_the_rows_that_do_not_hold():
    found = found_with({("1.4.1", 1, None): [97.6, 97.6, 97.7], ("1.4.1", 3, None): [99.2, 99.3, 99.3]})
    found.update(dict(record("1.3.2", 16, seed, 98.2, params=269_322, epochs=20) for seed in range(3)))
    claim = cnn_study.study(found)["cnn-vs-mlp"]
    assert len(claim["points"]) == 3
    text = claim["conclusion"]
    assert text.startswith("the measurement supports the claim but for some rows: every CNN row has fewer parameters")
    assert "1 of the 2 CNN rows beat the best MLP row" in text and "not: Table 1.4.1 row 1" in text


def _stats(rs):
    tests = [100 * r["test_accuracy"] for r in rs]
    return statistics.fmean(tests), statistics.stdev(tests)


def test_the_committed_conclusions_follow_from_the_committed_records():
    """Each claim measured so far: its verdict re-derived from the raw records, independently of
    cnn_study's own arithmetic, and found in its conclusion."""
    found = records.read_records(f"{ROOT}/results", quiet=True)
    claims = cnn_study.study(found)
    book = cnn_study.runs(found, *BOOK)
    for key, variant in (("pooling", "average-pooling"), ("pooling", "strided"), ("padding", "same")):
        other = cnn_study.runs(found, *cnn_study.VARIANT[variant])
        (ma, sa), (mb, sb) = _stats(book), _stats(other)
        verdict = "no measurable difference" if abs(mb - ma) <= sa + sb else "higher" if mb > ma else "lower"
        assert verdict in claims[key]["conclusion"] and f"({mb - ma:+.2f} points" in claims[key]["conclusion"]
    for lr in cnn_study.LEARNING_RATES:
        (ma, sa), (mb, sb) = (_stats(cnn_study.runs(found, *s, lr)) for s in (BOOK, cnn_study.VARIANT["batch-norm"]))
        expected = "no measurable difference" if abs(mb - ma) <= sa + sb else "higher" if mb > ma else "lower"
        assert f"at {lr:g}, BatchNormalization gives" in claims["batch-norm"]["conclusion"] and \
            expected in claims["batch-norm"]["conclusion"]
    points = claims["cnn-vs-mlp"]["points"]
    best_mlp = max(p[3] for p in points if p[0] == "MLP")
    beaten = sum(p[3] > best_mlp for p in points if p[0] == "CNN")
    assert f"{beaten} of the {sum(p[0] == 'CNN' for p in points)} CNN rows beat the best MLP row" in \
        claims["cnn-vs-mlp"]["conclusion"]


def test_the_seconds_name_the_machines_they_ran_on():
    found = found_with({(*BOOK, None): [99.2, 99.3, 99.4], (*AVERAGE, None): [99.1, 99.2, 99.3],
                        ("1.3.2", 16, None): [98.0, 98.1, 98.2]})
    for (trial, rec), device in zip(found.items(), ["CPU: A", "CPU: B", "CPU: A", "CPU: C", "CPU: A", "CPU: A",
                                                     "CPU: MLP", "CPU: MLP", "CPU: MLP"]):
        rec["device"] = device
    assert "on the machines the records name (CPU: A; CPU: B; CPU: C), shared" in cnn_study.section(found)
