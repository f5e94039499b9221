"""The book's tables re-run: per row the book beside the measured mean ± std over seeds, as Markdown and
CSV (study.results puts them into RESULTS.md), always at the book's budget (the table's epochs, batch 128,
Keras' default learning rate), for one Keras backend and precision. Nothing here imports Keras.
"""

import csv
import io

from study.stats import markdown, mean, mean_std, std

OFF_BY = 0.3  # a row is marked when its mean test accuracy is more than this many points from the book's
BATCH_SIZE = 128  # the book's batch size for every row


def book_budget(table, smoke=False, backend="tensorflow", precision="float32"):
    """The setting the book's table was trained with (smoke: one tiny epoch)."""
    return {"epochs": 1 if smoke else table.epochs, "batch_size": BATCH_SIZE, "smoke": smoke,
            "learning_rate": None, "backend": backend, "precision": precision}


def matches(trial, table_id, budget):
    return trial.table == table_id and all(getattr(trial, k) == v for k, v in budget.items())


def runs(records, table_id, number, budget):
    """The records of row ``number`` of a table under ``budget``, by seed."""
    return sorted((r for t, r in records.items() if t.row == number and matches(t, table_id, budget)),
                  key=lambda r: r["seed"])


def percent(runs, key):
    """The mean and sample std of ``key`` (an accuracy) over ``runs``, in percent."""
    values = [100 * r[key] for r in runs]
    return mean(values), std(values)


def summarize(table, records, budget):
    """One dict per row: the book's numbers and the measured ones (percent) under ``budget``."""
    rows = []
    for number, row in enumerate(table.rows, 1):
        found = runs(records, table.id, number, budget)
        (train_mean, train_std), (test_mean, test_std) = percent(found, "train_accuracy"), percent(found, "test_accuracy")
        # How fast a row was still learning at the end: the last epoch's rise in training accuracy (points).
        gains = [100 * (acc[-1] - acc[-2]) for acc in ((r.get("history") or {}).get("accuracy", []) for r in found)
                 if len(acc) > 1]
        test_diff = None if test_mean is None else test_mean - row.book_test
        rows.append({"row": number, **row.columns, "book_train": row.book_train, "book_test": row.book_test,
                     "n": len(found), "seeds": [r["seed"] for r in found], "params": found[0]["params"] if found else None,
                     "train_mean": train_mean, "train_std": train_std, "test_mean": test_mean, "test_std": test_std,
                     "seconds_mean": mean([r["fit_seconds"] for r in found]), "last_epoch_gain": mean(gains),
                     "last_epoch_gain_n": len(gains), "test_diff": test_diff,
                     "off": test_diff is not None and abs(test_diff) > OFF_BY})
    return rows


def still_learning(r):
    if not r["last_epoch_gain_n"]:
        return ""
    return (f"; training accuracy rose {r['last_epoch_gain']:+.2f} points in the last epoch "
            f"(mean of {r['last_epoch_gain_n']} run{'s' * (r['last_epoch_gain_n'] != 1)} with history)")


def markdown_table(table, rows):
    """The table as Markdown; ``test − book`` to three decimals, so that a row marked off by more than
    OFF_BY never reads as exactly OFF_BY."""
    config = list(table.rows[0].columns)
    head = ["#", *config, "book train %", "book test %", "train % (mean ± std)", "test % (mean ± std)",
            "n", "test − book", f"off by > {OFF_BY}"]
    return markdown(head, [[r["row"], *(r[c] for c in config), f"{r['book_train']:.2f}", f"{r['book_test']:.2f}",
                            mean_std(r["train_mean"], r["train_std"]), mean_std(r["test_mean"], r["test_std"]),
                            r["n"], "—" if r["test_diff"] is None else f"{r['test_diff']:+.3f}",
                            "**yes**" if r["off"] else ""] for r in rows]) + "\n"


def csv_table(table, rows):
    config = list(table.rows[0].columns)
    fields = ["row", *config, "book_train", "book_test", "train_mean", "train_std", "test_mean", "test_std",
              "n", "seeds", "test_diff", "off", "seconds_mean", "last_epoch_gain", "last_epoch_gain_n"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "seeds": " ".join(map(str, r["seeds"])),
                      **{k: "" if r[k] is None else f"{r[k]:.4f}" for k in
                         ("train_mean", "train_std", "test_mean", "test_std", "test_diff", "seconds_mean",
                          "last_epoch_gain")}} for r in rows)
    return buffer.getvalue()
