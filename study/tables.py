"""The chapter's tables and listings as data: the one place the book's numbers are typed. Tables 1.3.2
(MLP), 1.4.1 (CNN) and 1.5.1 (SimpleRNN), row by row: the columns as printed, the listing's ``build_model``
arguments that make the row, the optimizer, the book's train and test accuracy (%). How the labels are
read: docs/tables.md, "How the tables' rows are read". Nothing here imports Keras.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    """One configuration of a table: its columns as the book prints them, and the build settings."""

    columns: dict
    optimizer: str  # Keras' name: "sgd", "adam" or "rmsprop", with Keras' default settings
    build: dict  # keyword arguments of the listing's build_model
    book_train: float = None  # None: the chapter prints no number for this configuration
    book_test: float = None
    variant: str = None  # a change to the listing's model (study.variants), None for the model as printed

    @property
    def title(self):
        """The row in words, as the book prints its columns ("256-256-256 None SGD None"); a variant: its name."""
        return self.columns["variant"] if self.variant else " ".join(str(v) for v in self.columns.values())


@dataclass
class Table:
    id: str
    title: str
    listing: str  # the listing module whose build_model makes every row
    epochs: int  # the budget the book trained this table's rows for
    rows: list = field(default_factory=list)


@dataclass(frozen=True)
class Listing:
    """A script of the chapter: its outputs' name, module, number, stated test accuracy and parameter
    count, and the table row that is this very script."""

    name: str
    module: str
    number: str
    book_test: float
    params: int
    table: str
    row: int

    @property
    def script(self):
        return self.module + ".py"


def _regularizer(text):
    """'None', 'Dropout(0.45)' or 'L2(0.001)' -> build_model keyword arguments."""
    if text == "None":
        return {"dropout": 0.0}
    kind, value = text.rstrip(")").split("(")
    return {"dropout": float(value)} if kind == "Dropout" else {"dropout": 0.0, "l2_weight": float(value)}


def _mlp_row(layers, regularizer, optimizer, relu, train, test):
    # "256-512-256": the listing (the Adam 0.45 row) has two hidden layers and Dense(10), so the first two
    # numbers are the hidden widths; the third, in every row the first again, is no layer of the model.
    first, second = (int(n) for n in layers.split("-")[:2])
    build = {"hidden_units": first, "second_units": second, "activation": "relu" if relu == "Yes" else "linear",
             **_regularizer(regularizer)}
    columns = {"layers": layers, "regularizer": regularizer, "optimizer": optimizer, "ReLU": relu}
    return Row(columns, optimizer.lower(), build, train, test)


def _cnn_row(layers, optimizer, regularizer, train, test):
    return Row({"layers (filters)": layers, "optimizer": optimizer, "regularizer": regularizer}, optimizer.lower(),
               {"filters": int(layers.split("-")[0]), **_regularizer(regularizer)}, train, test)


def _rnn_row(units, optimizer, regularizer, train, test):
    return Row({"units": units, "optimizer": optimizer, "regularizer": regularizer}, optimizer.lower(),
               {"units": units, **_regularizer(regularizer)}, train, test)


# The book's tables, row by row, with its train and test accuracy (%).
TABLES = {
    "1.3.2": Table("1.3.2", "MLP configurations", "mlp_mnist", 20, [
        _mlp_row("256-256-256", "None", "SGD", "None", 93.65, 92.5),
        _mlp_row("256-256-256", "L2(0.001)", "SGD", "Yes", 99.35, 98.0),
        _mlp_row("256-256-256", "L2(0.01)", "SGD", "Yes", 96.90, 96.7),
        _mlp_row("256-256-256", "None", "SGD", "Yes", 99.93, 98.0),
        _mlp_row("256-256-256", "Dropout(0.4)", "SGD", "Yes", 98.23, 98.1),
        _mlp_row("256-256-256", "Dropout(0.45)", "SGD", "Yes", 98.07, 98.1),
        _mlp_row("256-256-256", "Dropout(0.5)", "SGD", "Yes", 97.68, 98.1),
        _mlp_row("256-256-256", "Dropout(0.6)", "SGD", "Yes", 97.11, 97.9),
        _mlp_row("256-512-256", "Dropout(0.45)", "SGD", "Yes", 98.21, 98.2),
        _mlp_row("512-512-512", "Dropout(0.2)", "SGD", "Yes", 99.45, 98.3),
        _mlp_row("512-512-512", "Dropout(0.4)", "SGD", "Yes", 98.95, 98.3),
        _mlp_row("512-1024-512", "Dropout(0.45)", "SGD", "Yes", 98.90, 98.2),
        _mlp_row("1024-1024-1024", "Dropout(0.4)", "SGD", "Yes", 99.37, 98.3),
        _mlp_row("256-256-256", "Dropout(0.6)", "Adam", "Yes", 98.64, 98.2),
        _mlp_row("256-256-256", "Dropout(0.55)", "Adam", "Yes", 99.02, 98.3),
        _mlp_row("256-256-256", "Dropout(0.45)", "Adam", "Yes", 99.39, 98.5),
        _mlp_row("256-256-256", "Dropout(0.45)", "RMSprop", "Yes", 98.75, 98.1),
        _mlp_row("128-128-128", "Dropout(0.45)", "Adam", "Yes", 98.70, 97.7),
    ]),
    "1.4.1": Table("1.4.1", "CNN configurations", "cnn_mnist", 10, [
        _cnn_row("64-64-64", "SGD", "Dropout(0.2)", 97.76, 98.50),
        _cnn_row("64-64-64", "RMSprop", "Dropout(0.2)", 99.11, 99.00),
        _cnn_row("64-64-64", "Adam", "Dropout(0.2)", 99.75, 99.40),
        _cnn_row("64-64-64", "Adam", "Dropout(0.4)", 99.64, 99.30),
    ]),
    "1.5.1": Table("1.5.1", "SimpleRNN configurations", "rnn_mnist", 20, [
        _rnn_row(256, "SGD", "Dropout(0.2)", 97.26, 98.00),
        _rnn_row(256, "RMSprop", "Dropout(0.2)", 96.72, 97.60),
        _rnn_row(256, "Adam", "Dropout(0.2)", 96.79, 97.40),
        _rnn_row(512, "SGD", "Dropout(0.2)", 97.88, 98.30),
    ]),
}

# The three scripts; each is one row of its table (the row with the listing's own settings).
LISTINGS = {
    "mlp": Listing("mlp-mnist", "mlp_mnist", "1.3.2", 98.3, 269_322, "1.3.2", 16),
    "cnn": Listing("cnn-mnist", "cnn_mnist", "1.4.1", 99.4, 80_266, "1.4.1", 3),
    "rnn": Listing("rnn-mnist", "rnn_mnist", "1.5.1", 98.3, 75_530, "1.5.1", 1),
}


# Listing 1.4.2: the CNN's summary as the book prints it (Keras 2's layer names): layer, output shape, params.
LISTING_1_4_2 = [
    ("conv2d_1", "Conv2D", (None, 26, 26, 64), 640),
    ("max_pooling2d_1", "MaxPooling2D", (None, 13, 13, 64), 0),
    ("conv2d_2", "Conv2D", (None, 11, 11, 64), 36_928),
    ("max_pooling2d_2", "MaxPooling2D", (None, 5, 5, 64), 0),
    ("conv2d_3", "Conv2D", (None, 3, 3, 64), 36_928),
    ("flatten_1", "Flatten", (None, 576), 0),
    ("dropout_1", "Dropout", (None, 576), 0),
    ("dense_1", "Dense", (None, 10), 5_770),
    ("activation_1", "Activation", (None, 10), 0),
]


def row(table_id, number):
    """Row ``number`` (counted from 1, as the README and RESULTS.md count) of a table."""
    return TABLES[table_id].rows[number - 1]


# What the CNN section says but never measures: Listing 1.4.1's model (Adam, Dropout(0.2), the
# listing's own settings) with one change each, trained at Table 1.4.1's budget. The changes are
# made by study.variants on the listing's own build_model; the listing stays as printed.
# Strided convolution is read as "the Conv2D before each pooling layer gets strides=2 and the
# pooling layer goes": the same 50% size reduction, with no layer added.
VARIANTS = Table("cnn-variants", "Listing 1.4.1's model, one change each", "cnn_mnist", 10, [
    Row({"variant": "AveragePooling2D", "change": "AveragePooling2D(2) in place of each MaxPooling2D(2)"},
        "adam", {}, variant="average-pooling"),
    Row({"variant": "strided Conv2D", "change": "strides=2 on the Conv2D before each pooling layer, "
         "and no pooling layer"}, "adam", {}, variant="strided"),
    Row({"variant": "padding='same'", "change": "padding='same' on every Conv2D"}, "adam", {}, variant="same"),
    Row({"variant": "BatchNormalization", "change": "each Conv2D without activation, then "
         "BatchNormalization, then Activation('relu')"}, "adam", {}, variant="batch-norm"),
])

# Everything a sweep (reproduce.py) can run and record: the book's tables and the variants.
SWEEPS = {**TABLES, VARIANTS.id: VARIANTS}
