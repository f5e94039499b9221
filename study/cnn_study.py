"""What the chapter says but never measures, measured: four claims of the CNN section (pooling, padding='same',
BatchNormalization with large learning rates, CNN against MLP), from reproduce.py's records of Listing 1.4.1's
model (Table 1.4.1 row 3) and its variants (study.tables.VARIANTS) at Table 1.4.1's budget: tables, a generated
conclusion per claim, two figures. A difference is *measurable* when larger than the two settings' seed
spreads together (|mean a - mean b| > std a + std b), *clear* when more than twice that. Nothing imports Keras.
"""

import math

from ch1 import outputs
from study import report
from study.report import BATCH_SIZE, book_budget, matches, percent
from study.stats import markdown, mean, mean_std, plot_curves, std
from study.tables import LISTINGS, TABLES, VARIANTS

BOOK = ("1.4.1", LISTINGS["cnn"].row)  # Listing 1.4.1's model as printed: its row of Table 1.4.1
VARIANT = {row.variant: (VARIANTS.id, number) for number, row in enumerate(VARIANTS.rows, 1)}
LEARNING_RATES = (0.001, 0.01, 0.1)  # Adam's default (Keras), then ten and a hundred times it
SEEDS = 3
CURVES_FIGURE = "cnn-learning-rates.png"
PARAMS_FIGURE = "cnn-against-mlp.png"
COMMANDS = (
    "python reproduce.py --table cnn-variants --seeds 3 --validation",
    "python reproduce.py --table 1.4.1 --row 3 --seeds 3 --validation --learning-rate LR   # LR: 0.001, 0.01, 0.1",
    "python reproduce.py --table cnn-variants --row 4 --seeds 3 --validation --learning-rate LR",
)


def budget(learning_rate=None):
    """Table 1.4.1's budget, with Adam's ``learning_rate`` (None: Keras' default)."""
    return {**book_budget(TABLES["1.4.1"]), "learning_rate": learning_rate}


def runs(found, table_id, number, learning_rate=None):
    """The records of one row at Table 1.4.1's budget (``learning_rate`` None: Keras' default), by seed."""
    return report.runs(found, table_id, number, budget(learning_rate))


def in_study(trial):
    """Whether a record is this study's own run at a learning rate of its own (reported here, not apart)."""
    return (trial.table, trial.row) == BOOK and trial.learning_rate in LEARNING_RATES and matches(
        trial, BOOK[0], budget(trial.learning_rate))


def setting(name, records):
    """A setting's runs: n, params, train and test % and seconds per epoch (mean, std), test curves, the
    lowest test % after epoch 1, and how many runs diverged (their loss stopped being finite)."""
    per_epoch = [r["fit_seconds"] / r["epochs"] for r in records]
    curves = [r["history"] for r in records if "val_accuracy" in r.get("history", {})]
    return {"name": name, "n": len(records), "params": records[0]["params"] if records else None,
            "test": percent(records, "test_accuracy"), "train": percent(records, "train_accuracy"),
            "seconds": (mean(per_epoch), std(per_epoch)), "curves": curves,
            "diverged": sum(1 for r in records if r.get("diverged")),
            "lowest_test": min((100 * min(h["val_accuracy"][1:] or h["val_accuracy"]) for h in curves), default=None)}


def compare(a, b):
    """``b``'s test accuracy against ``a``'s: (points, 'no measurable difference' | 'clearly lower' ...)."""
    (ma, sa), (mb, sb) = a["test"], b["test"]
    diff, spread = mb - ma, (sa or 0.0) + (sb or 0.0)
    if abs(diff) <= spread:
        return diff, "no measurable difference"
    return diff, f"{'clearly' if abs(diff) > 2 * spread else 'measurably'} {'higher' if diff > 0 else 'lower'}"


def study(found):
    """Every claim's settings (``settings``, ``rates`` or ``points``) and its ``conclusion``, by claim."""
    book = setting("Listing 1.4.1 as printed (MaxPooling2D)", runs(found, *BOOK))
    variants = {v: setting(VARIANTS.rows[n - 1].columns["change"], runs(found, t, n)) for v, (t, n) in VARIANT.items()}
    rates = [(lr, setting(f"Listing 1.4.1 as printed, learning rate {lr:g}", runs(found, *BOOK, lr)),
              setting(f"with BatchNormalization, learning rate {lr:g}", runs(found, *VARIANT["batch-norm"], lr)))
             for lr in LEARNING_RATES]
    points = cnn_and_mlp_points(found, variants)
    pooling, padding = [book, variants["average-pooling"], variants["strided"]], [book, variants["same"]]
    return {"pooling": {"settings": pooling, "conclusion": _not_yet(pooling) or _pooling_conclusion(*pooling)},
            "padding": {"settings": padding, "conclusion": _not_yet(padding) or _padding_conclusion(*padding)},
            "batch-norm": {"rates": rates, "conclusion": _not_yet([s for _, a, b in rates for s in (a, b)])
                           or _batch_norm_conclusion(rates)},
            "cnn-vs-mlp": {"points": points, "conclusion": _cnn_vs_mlp_conclusion(points)}}


def _not_yet(settings):
    """'not measured yet: ...' naming the settings short of their seeds, or None when none is."""
    missing = [f"{s['name']} ({s['n']} of {SEEDS} seeds)" for s in settings if s["n"] < SEEDS]
    return "not measured yet: " + "; ".join(missing) if missing else None


def _pooling_conclusion(book, *others):
    verdicts = [(s, compare(book, s)) for s in others]
    words = "; ".join(f"{s['name']}: {verdict} in test accuracy ({diff:+.2f} points, {s['params']:,} params)"
                      for s, (diff, verdict) in verdicts)
    lead = ("no measurable difference: at this budget the three reductions train to test accuracies within their "
            "seed spreads" if all(verdict == "no measurable difference" for _, (_, verdict) in verdicts) else
            "the measurement supports \"subtle differences\": the largest is "
            f"{max(abs(diff) for _, (diff, _) in verdicts):.2f} points of test accuracy")
    return f"{lead}. Against MaxPooling2D(2): {words}."


def _padding_conclusion(book, same):
    diff, verdict = compare(book, same)
    return (f"the claim holds as a fact of shapes: with padding='same' each Conv2D's maps are its input's size "
            f"(28x28 stays 28x28; 'valid' makes it 26x26), which leaves 7x7 instead of 3x3 maps for the Dense layer "
            f"({same['params']:,} params against {book['params']:,}); test accuracy: {verdict} "
            f"({diff:+.2f} points).")


def _batch_norm_conclusion(rates):
    parts, supports = [], []
    for lr, plain, norm in rates:
        diff, verdict = compare(plain, norm)
        words = f"{verdict} in test accuracy" if verdict.startswith("no ") else f"a {verdict} test accuracy"
        parts.append(f"at {lr:g}, BatchNormalization gives {words} ({diff:+.2f} points; "
                     f"{mean_std(*plain['test'])} % without, {mean_std(*norm['test'])} % with"
                     + (f"; {plain['diverged']} of {plain['n']} runs without it diverged" if plain["diverged"] else "")
                     + (f"; {norm['diverged']} of {norm['n']} with it diverged" if norm["diverged"] else "") + ")")
        supports.append(verdict.endswith("higher"))
    large = supports[1:]  # the two large rates
    lead = ("the measurement supports the claim" if all(large) else
            "the measurement supports the claim at the largest rate only" if large[-1] else
            "the measurement does not support the claim")
    return f"{lead}: " + "; ".join(parts) + "."


def cnn_and_mlp_points(found, variants):
    """(family, label, params, test mean, test std, n) per MLP, CNN and variant row at the book's budget."""
    points = []
    for table_id, family in (("1.3.2", "MLP"), ("1.4.1", "CNN")):
        table = TABLES[table_id]
        points += [(family, f"Table {table_id} row {r['row']}: {table.rows[r['row'] - 1].title}", r["params"],
                    r["test_mean"], r["test_std"], r["n"]) for r in report.summarize(table, found, book_budget(table))
                   if r["n"]]
    points += [("CNN variant", s["name"], s["params"], *s["test"], s["n"]) for s in variants.values() if s["n"]]
    return points


def _cnn_vs_mlp_conclusion(points):
    mlps = [p for p in points if p[0] == "MLP"]
    cnns = [p for p in points if p[0] == "CNN"]
    if not mlps or not cnns:
        return "not measured yet: no recorded rows of Table 1.3.2 or 1.4.1"
    best_mlp = max(mlps, key=lambda p: p[3])
    smallest_mlp = min(p[2] for p in mlps)
    fewer = all(c[2] < smallest_mlp for c in cnns)
    beaten = [c for c in cnns if c[3] > best_mlp[3]]
    others = [c for c in cnns if c[3] <= best_mlp[3]]
    lead = ("the measurement supports the claim" if fewer and not others else
            "the measurement supports the claim but for some rows" if fewer and beaten else
            "the measurement does not support the claim")
    text = (f"{lead}: {'every' if fewer else 'not every'} CNN row has fewer parameters "
            f"({max(c[2] for c in cnns):,} at most) than the smallest MLP ({smallest_mlp:,}), and {len(beaten)} of "
            f"the {len(cnns)} CNN rows beat the best MLP row ({best_mlp[1]}, {mean_std(best_mlp[3], best_mlp[4])} % "
            f"with {best_mlp[2]:,} params) in test accuracy")
    if others:
        text += "; not: " + "; ".join(f"{c[1]} ({mean_std(c[3], c[4])} %)" for c in others)
    return text + "."


# --- the report -------------------------------------------------------------------------------


def _cells(s):
    """A setting's n, test accuracy and seconds per epoch, as table cells."""
    return [s["n"], mean_std(*s["test"]), mean_std(*s["seconds"], digits=1)]


def _table(settings):
    return markdown(["setting", "params", "n", "test %", "s per epoch", "train %"],
                     [[s["name"], "—" if s["params"] is None else f"{s['params']:,}", *_cells(s),
                       mean_std(*s["train"])] for s in settings])


def _rates_table(rates):
    return markdown(["learning rate", "model", "n", "test % after 10 epochs", "s per epoch",
                      "lowest test % after epoch 1", "diverged"],
                     [[f"{lr:g}", label, *_cells(s), "—" if s["lowest_test"] is None else f"{s['lowest_test']:.2f}",
                       s["diverged"]] for lr, plain, norm in rates
                      for label, s in (("as printed", plain), ("BatchNormalization", norm))])


def _points_table(points):
    return markdown(["family", "row", "params", "n", "test %"],
                     [[family, label, f"{params:,}", n, mean_std(test_mean, test_std)]
                      for family, label, params, test_mean, test_std, n in sorted(points, key=lambda p: p[2])])


CLAIMS = (
    ("pooling", "Pooling: MaxPooling2D(2), AveragePooling2D(2) or a strided Conv2D",
     "\"There are subtle differences in the effectiveness of each reduction technique.\" The variants replace "
     "each MaxPooling2D(2) with AveragePooling2D(2), or give the Conv2D before each pooling layer strides=2 "
     "and drop the pooling layer (the reading taken for \"Conv2D(strides=2,...)\": the same halving, no layer "
     "added)."),
    ("padding", "padding='same'", "\"If the dimensions of the input should be the same as the output feature maps, "
     "Conv2D will accept the option padding='same'.\" Every Conv2D gets padding='same'."),
    ("batch-norm", "BatchNormalization and large learning rates",
     "\"Batch normalization is used in deep CNNs so that large learning rates can be used without causing "
     "instability during training.\" Each Conv2D loses its activation and is followed by BatchNormalization() "
     "and Activation('relu'); both models train with Adam at three learning rates, the test accuracy "
     "recorded after every epoch. A loss that turns NaN ends a run there, recorded as diverged."),
    ("cnn-vs-mlp", "CNN against MLP", "\"CNNs are more parameter efficient and have a higher accuracy than MLPs.\" "
     "Every MLP and CNN row at the book's budget, one point each, with its spread."),
)


def _where(found):
    """The devices named by the records behind claims 1 to 3's seconds, in words."""
    devices = list(dict.fromkeys(r["device"] for t, r in found.items() if r.get("device") and (
        t.table == VARIANTS.id or (t.table, t.row) == BOOK) and not t.smoke and t.epochs == TABLES["1.4.1"].epochs))
    return (f"on {'the machine' if len(devices) == 1 else 'the machines'} the records name ({'; '.join(devices)})"
            if devices else "on the machine each records")


def section(found, level=2, figures="docs/figures"):
    """The section "What the chapter says, measured" (RESULTS.md; the chapter page, one level down),
    linking its figures in ``figures``."""
    claims = study(found)
    mark = "#" * level
    rates, points = claims["batch-norm"]["rates"], claims["cnn-vs-mlp"]["points"]
    bodies = {"pooling": _table(claims["pooling"]["settings"]), "padding": _table(claims["padding"]["settings"]),
              "batch-norm": _rates_table(rates) + (  # drawn by write_figures only then
                  f"\n\n![train and test accuracy per epoch at each learning rate]({figures}/{CURVES_FIGURE})"
                  if _has_curves(rates) else ""),
              "cnn-vs-mlp": _points_table(points) + (
                  f"\n\n![test accuracy against parameters]({figures}/{PARAMS_FIGURE})" if points else "")}
    parts = [f"{mark} What the chapter says, measured\n",
             "Four claims of the CNN section, each tested with real runs of Listing 1.4.1's model and one change "
             f"(`study/tables.py`'s `VARIANTS`), at Table 1.4.1's budget: Adam, batch {BATCH_SIZE}, "
             f"{TABLES['1.4.1'].epochs} epochs, {SEEDS} seeds (0, 1, 2); mean ± sample std over the seeds. A "
             "difference counts as measurable when it is larger than the two settings' spreads together. "
             f"Seconds per epoch are wall-clock as each run recorded them, {_where(found)}, shared with other "
             "work and at different times: they are no speed measurement. The runs:\n",
             "```bash", *COMMANDS, "python reproduce.py --merge    # this section and its figures", "```\n"]
    for key, title, text in CLAIMS:
        parts += [f"{mark}# {title}\n\n{text}\n", bodies[key] + "\n", f"**Conclusion:** {claims[key]['conclusion']}\n"]
    return "\n".join(parts)


def _has_curves(rates):
    return any(s["curves"] for _, plain, norm in rates for s in (plain, norm))


def write_figures(found, folder):
    """Into ``folder``, those of the two figures with data: the curves per learning rate, and test
    accuracy against parameters. Returns the paths written."""
    claims = study(found)
    plt = outputs.plt
    written = []
    rates = claims["batch-norm"]["rates"]
    if _has_curves(rates):
        fig, axes = plt.subplots(1, len(rates), figsize=(5 * len(rates), 4.2), squeeze=False, sharey=True)
        for ax, (lr, plain, norm) in zip(axes[0], rates):
            for s, color, label in ((plain, "C0", "as printed"), (norm, "C1", "BatchNormalization")):
                plot_curves(ax, s["curves"], {"color": color, "linestyle": "--", "alpha": 0.7, "label": f"{label}, train"},
                            {"color": color, "alpha": 0.9, "label": f"{label}, test"})
            ax.set_title(f"Adam, learning rate {lr:g}", fontsize=10)
        axes[0, 0].set_ylabel("accuracy (%)")
        axes[0, -1].legend(fontsize=8, loc="lower right")
        fig.suptitle("Listing 1.4.1's CNN with and without BatchNormalization: one curve per seed")
        fig.tight_layout()
        written.append(outputs.save_figure(fig, f"{folder}/{CURVES_FIGURE}", dpi=90))
    points = claims["cnn-vs-mlp"]["points"]
    if points:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for family, marker, color in (("MLP", "o", "C0"), ("CNN", "s", "C1"), ("CNN variant", "^", "C2")):
            mine = [p for p in points if p[0] == family]
            if mine:
                ax.errorbar([p[2] for p in mine], [p[3] for p in mine], yerr=[p[4] or 0 for p in mine], fmt=marker,
                            color=color, capsize=3, label=f"{family} ({len(mine)} rows)")
        low = min(p[3] for p in points)
        ax.set(xscale="log", xlabel="parameters (log scale)", ylabel="test accuracy (%), mean ± std over seeds",
               ylim=(max(low - 1, 0), 100 if math.isfinite(low) else None))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("Tables 1.3.2 and 1.4.1 at the book's budget: test accuracy against parameters", fontsize=10)
        fig.tight_layout()
        written.append(outputs.save_figure(fig, f"{folder}/{PARAMS_FIGURE}", dpi=90))
    return written
