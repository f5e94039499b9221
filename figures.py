"""The chapter's figures, re-made from real MNIST and the models the listings trained.

mnist-samples.png (Listing 1.3.1's 25 digits), the three listings' diagrams (<name>.png, as their
plot_model draws them), cnn-kernel.png and cnn-maxpool.png (Figures 1.4.2-1.4.4 made real with
the CNN's first layer), <name>-history.png (each run's loss and accuracy per epoch, from its
<name>.json, as the listing draws it), cnn-confusion.png and cnn-misclassified.png (the CNN on the test
digits). A run that is not the book's full budget says so in its titles.
"""

import argparse
import importlib
import os

from ch1 import quiet_startup
from ch1.cli import Parser, add_data_arg, ensure_output_dir, fail, seed_number


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--models-dir", metavar="DIR",
                        help="where the listings wrote <name>.json and cnn-mnist.keras; default: outputs "
                        "(outputs/smoke with --smoke)")
    parser.add_argument("--seed", type=seed_number, default=0, help="seed of the sampler's random digits")
    add_data_arg(parser)
    parser.add_argument("--output-dir", metavar="DIR", default="outputs",
                        help="where the figures are written (<output-dir>/smoke with --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="figures of the listings' --smoke runs (trains nothing): their models and JSON "
                        "from outputs/smoke, MNIST's smoke subset, figures under <output-dir>/smoke")
    return parser.parse_args(argv)


if __name__ == "__main__":
    parse_args(None)  # --help or a mistyped flag answers here, at once: before Keras loads TensorFlow
quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import keras
import numpy as np

from ch1 import outputs, run
from ch1.data import prepare_images
from ch1.run import load_data, run_folder, seed_everything
import cnn_mnist
import mnist_sampler
from your_digit import model_file
from study.tables import LISTINGS, TABLES

plt = outputs.plt


def first_conv(model, digit):
    """The model's first Conv2D layer, and its output (ReLU applied) for ``digit`` (28x28): (26, 26, filters)."""
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    return conv, keras.ops.convert_to_numpy(conv(keras.ops.convert_to_tensor(prepare_images(digit[None], (28, 28, 1)))))[0]


def _show(ax, image, title, box=None, numbers=None, size=None, **style):
    """``image`` on ``ax`` (gray unless ``style`` says), titled (font ``size``), with a red square ``box``
    (x, y, side, line width) and, given ``numbers`` (ax.text keywords), each value written on it."""
    ax.imshow(image, **{"cmap": "gray", **style})
    if box:
        x, y, side, width = box
        ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), side, side, fill=False, edgecolor="red", linewidth=width))
    for (i, j), v in np.ndenumerate(image) if numbers else ():
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", **numbers)
    ax.set_title(title, **{"fontsize": size} if size else {})


def kernel_figure(model, digit, label, who="the trained CNN"):
    """Figures 1.4.2-1.4.3: a 3x3 kernel over the digit and the 26x26 feature maps it yields."""
    conv, maps = first_conv(model, digit)
    kernels, biases = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    order = np.argsort(-maps.reshape(-1, maps.shape[-1]).std(axis=0))  # the liveliest maps first
    k = int(order[0])
    row, col = np.unravel_index(np.argmax(maps[:, :, k]), maps.shape[:2])
    fig = plt.figure(figsize=(12, 6.5))
    grid = fig.add_gridspec(2, 6)
    _show(fig.add_subplot(grid[:, :2]), digit, f"test digit '{label}', 28x28, and a 3x3 window", (col, row, 3, 2), size=10)
    _show(fig.add_subplot(grid[0, 2]), kernels[:, :, 0, k], f"kernel {k} (3x3), bias {biases[k]:.2f}",
          numbers={"fontsize": 8}, size=9, cmap="coolwarm")
    _show(fig.add_subplot(grid[1, 2]), maps[:, :, k], f"its feature map {maps.shape[0]}x{maps.shape[1]}",
          (col, row, 1, 1.5), size=9)
    for n, f in enumerate(order[1:7]):
        _show(fig.add_subplot(grid[n // 3, 3 + n % 3]), maps[:, :, f], f"feature map {f}", size=9)
    for ax in fig.axes[1:]:
        ax.axis("off")
    fig.suptitle(f"First Conv2D layer of {who}: {conv.filters} kernels of 3x3, "
                 f"'valid' padding, 28x28 -> {maps.shape[0]}x{maps.shape[1]} (Figures 1.4.2-1.4.3)")
    fig.tight_layout()
    return fig


def maxpool_figure(model, digit, who="the trained CNN"):
    """Figure 1.4.4: MaxPooling2D(2) on a real feature map, and one 4x4 patch -> 2x2."""
    maps = first_conv(model, digit)[1]
    k = int(np.argmax(maps.reshape(-1, maps.shape[-1]).std(axis=0)))
    pooled = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(2)(maps[None]))[0, :, :, k]
    fmap = maps[:, :, k]
    # The 4x4 patch (aligned to the pooling grid) with the most going on.
    r, c = max(((r, c) for r in range(0, 24, 2) for c in range(0, 24, 2)),
               key=lambda rc: fmap[rc[0]:rc[0] + 4, rc[1]:rc[1] + 4].std())
    patch = fmap[r:r + 4, c:c + 4]
    maxed = patch.reshape(2, 2, 2, 2).max(axis=(1, 3))
    assert np.allclose(pooled[r // 2:r // 2 + 2, c // 2:c // 2 + 2], maxed)
    fig, axes = plt.subplots(1, 4, figsize=(14, 4))
    _show(axes[0], fmap, f"feature map {k}: 26x26", (c, r, 4, 2))
    _show(axes[1], pooled, "after MaxPooling2D(2): 13x13")
    for ax, values, title in ((axes[2], patch, "a 4x4 patch"), (axes[3], maxed, "max of each 2x2: 2x2")):
        _show(ax, values, title, numbers={"color": "red", "fontsize": 11}, vmin=fmap.min(), vmax=fmap.max())
    for ax in axes:
        ax.set(xticks=[], yticks=[])
    fig.suptitle(f"MaxPooling2D(2) on a real feature map of {who} (Figure 1.4.4)")
    fig.tight_layout()
    return fig


def run_title(run):
    """A run in words, saying when it is not the book's full run: "cnn-mnist (Listing 1.4.1)",
    "... smoke run: 1 short epoch", "... 2 of the book's 10 epochs"."""
    title = f"{run['name']} (Listing {run['listing']})"
    book_epochs = next((TABLES[listing.table].epochs for listing in LISTINGS.values() if listing.name == run["name"]),
                       None)
    if run.get("smoke"):
        return f"{title}, smoke run: {run['epochs']} short epoch"
    if book_epochs and run["epochs"] != book_epochs:
        return f"{title}, {run['epochs']} of the book's {book_epochs} epochs"
    return title


def confusion_figure(y_true, y_pred):
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), n in np.ndenumerate(matrix):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > matrix.max() / 3 else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit")
    errors = int(matrix.sum() - np.trace(matrix))
    ax.set_title(f"CNN on {matrix.sum():,} test digits: {errors} errors "
                 f"({100 * np.trace(matrix) / matrix.sum():.2f}% accuracy)")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    return fig, matrix


def misclassified_figure(x_test, y_true, y_pred, probabilities, limit=36):
    wrong = np.flatnonzero(y_true != y_pred)[:limit]
    rows, cols = max(1, -(-len(wrong) // 6)), 6
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(x_test[i], cmap="gray")
        ax.set_title(f"true {y_true[i]}, said {y_pred[i]}\n({100 * probabilities[i, y_pred[i]]:.0f}%)", fontsize=8)
    fig.suptitle(f"The CNN's first {len(wrong)} of {int((y_true != y_pred).sum())} misclassified test digits")
    fig.tight_layout()
    return fig


def read_run(path):
    """A script's results JSON (<name>.json), read by ch1.run.read_run; else exit with one line."""
    try:
        return run.read_run(path)
    except (OSError, ValueError) as exc:
        fail(f"{path}: not a results JSON of the scripts ({exc})")


def load_cnn(path, given):
    """Listing 1.4.1's trained CNN from ``path``, checked; else exit with one line (``given``: whether
    the folder came from --models-dir)."""
    if not os.path.lexists(path):
        where = "pass --models-dir DIR holding one" if not given else "train one there first"
        fail(f"{path}: no trained CNN here; run `python cnn_mnist.py` first, or {where}")
    try:
        model = model_file.load_classifier(path)
    except model_file.ModelFileError as exc:
        fail(str(exc))
    if model.input_shape[1:] != cnn_mnist.input_shape or not isinstance(model.layers[0], keras.layers.Conv2D):
        fail(f"{path}: not Listing 1.4.1's CNN (input {model.input_shape[1:]}, first layer "
             f"{type(model.layers[0]).__name__}); the kernel and pooling figures need its first Conv2D")
    return model


def main(argv=None):
    args = parse_args(argv)
    folder = ensure_output_dir(run_folder(args))  # a smoke run's figures never replace a full run's
    models_dir = args.models_dir or run_folder(argparse.Namespace(output_dir="outputs", smoke=args.smoke))
    model_path = os.path.join(models_dir, "cnn-mnist.keras")
    runs = {listing.name: read_run(path) for listing, path in (
        (listing, os.path.join(models_dir, listing.name + ".json")) for listing in LISTINGS.values())
        if os.path.isfile(path)}
    model = load_cnn(model_path, args.models_dir is not None)
    cnn_run = runs.get(LISTINGS["cnn"].name)
    print(f"Using {model_path}" + (f": {run_title(cnn_run)}, test accuracy {100 * cnn_run['test_accuracy']:.2f}%"
                                   if cnn_run else " (no cnn-mnist.json beside it)"))
    who = "the CNN after one --smoke epoch" if (cnn_run["smoke"] if cnn_run else args.smoke) else "the trained CNN"
    (x_train, y_train), (x_test, y_test) = load_data(args)
    written = []

    def save(fig, name):
        written.append(outputs.save_figure(fig, os.path.join(folder, name), dpi=100))

    seed_everything(args.seed)
    save(mnist_sampler.plot_samples(x_train, y_train), "mnist-samples.png")
    for listing in LISTINGS.values():  # the diagrams, as each listing's plot_model(..., show_shapes=True)
        keras.backend.clear_session()  # the layer names a run of the listing shows
        written.append(outputs.plot_model(importlib.import_module(listing.module).build_model(),
                                          os.path.join(folder, listing.name + ".png")))
    digit = int(np.flatnonzero(y_test == 7)[0])  # the first 7 of the test set
    save(kernel_figure(model, x_test[digit], y_test[digit], who), "cnn-kernel.png")
    save(maxpool_figure(model, x_test[digit], who), "cnn-maxpool.png")
    written += [outputs.plot_history(run["history"], os.path.join(folder, f"{name}-history.png"),  # as the listing
                                     f"{run_title(run)}: test accuracy {100 * run['test_accuracy']:.2f}%")
                for name, run in runs.items()]
    probabilities = model.predict(prepare_images(x_test, model.input_shape[1:]), batch_size=256, verbose=0)
    y_pred = probabilities.argmax(axis=1)
    save(confusion_figure(y_test, y_pred)[0], "cnn-confusion.png")
    save(misclassified_figure(x_test, y_test, y_pred, probabilities), "cnn-misclassified.png")
    print("\n".join(f"Wrote {path}" for path in written))
    return written


if __name__ == "__main__":
    main()
