"""The chapter's figures, re-made from real MNIST and the models the scripts trained.

- mnist-samples.png: Listing 1.3.1's sampler, 25 training digits with their labels (seeded).
- cnn-kernel.png: Figures 1.4.2-1.4.3 made real: a 3x3 kernel of the trained CNN's first
  layer over a test digit, and the feature maps that layer yields (28x28 -> 26x26, "valid").
- cnn-maxpool.png: Figure 1.4.4 made real: MaxPooling2D(2) on a real feature map (26x26 -> 13x13),
  with a 4x4 patch and the 2x2 it pools to.
- training-curves.png: loss and accuracy per epoch of each script's run (from <name>.json).
- cnn-confusion.png, cnn-misclassified.png: the trained CNN on the 10,000 test digits.

    python cnn_mnist.py && python mlp_mnist.py && python rnn_mnist.py   # train (outputs/)
    python figures.py                                                   # figures into outputs/
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import json
import os

import keras
import numpy as np

from ch1 import outputs
from ch1.cli import Parser, add_data_arg, fail, output_dir, seed
from ch1.data import one_line, prepare_images
from ch1.files import regular_file
from ch1.run import add_smoke_arg, load_data
from tools.tables import LISTINGS

plt = outputs.plt


def sampler(x_train, y_train, seed):
    """Listing 1.3.1: 25 random training digits in a 5x5 grid, each with its label."""
    indexes = np.random.default_rng(seed).integers(0, len(x_train), size=25)
    fig, axes = plt.subplots(5, 5, figsize=(5, 5.6))
    for ax, i in zip(axes.flat, indexes):
        ax.imshow(x_train[i], cmap="gray")
        ax.set_title(str(y_train[i]), fontsize=10)
        ax.axis("off")
    fig.suptitle("25 MNIST training digits (Listing 1.3.1)")
    fig.tight_layout()
    return fig


def first_conv(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def feature_maps(model, images):
    """The first Conv2D layer's output (ReLU applied) for ``images`` shaped (N, 28, 28, 1)."""
    conv = first_conv(model)
    return keras.ops.convert_to_numpy(conv(keras.ops.convert_to_tensor(images)))


def kernel_figure(model, digit, label):
    """Figures 1.4.2-1.4.3: a 3x3 kernel over the digit and the 26x26 feature maps it yields."""
    conv = first_conv(model)
    kernels, biases = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    maps = feature_maps(model, prepare_images(digit[None], (28, 28, 1)))[0]  # (26, 26, filters)
    order = np.argsort(-maps.reshape(-1, maps.shape[-1]).std(axis=0))  # the liveliest maps first
    k = int(order[0])
    fig = plt.figure(figsize=(12, 6.5))
    grid = fig.add_gridspec(2, 6)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(digit, cmap="gray")
    row, col = np.unravel_index(np.argmax(maps[:, :, k]), maps.shape[:2])
    ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 3, 3, fill=False, edgecolor="red", linewidth=2))
    ax.set_title(f"test digit '{label}', 28x28, and a 3x3 window", fontsize=10)
    ax = fig.add_subplot(grid[0, 2])
    ax.imshow(kernels[:, :, 0, k], cmap="coolwarm")
    for (i, j), w in np.ndenumerate(kernels[:, :, 0, k]):
        ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize=8)
    ax.set_title(f"kernel {k} (3x3), bias {biases[k]:.2f}", fontsize=9)
    ax.axis("off")
    ax = fig.add_subplot(grid[1, 2])
    ax.imshow(maps[:, :, k], cmap="gray")
    ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    ax.set_title(f"its feature map {maps.shape[0]}x{maps.shape[1]}", fontsize=9)
    ax.axis("off")
    for n, f in enumerate(order[1:7]):
        ax = fig.add_subplot(grid[n // 3, 3 + n % 3])
        ax.imshow(maps[:, :, f], cmap="gray")
        ax.set_title(f"feature map {f}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"First Conv2D layer of the trained CNN: {conv.filters} kernels of 3x3, "
                 f"'valid' padding, 28x28 -> {maps.shape[0]}x{maps.shape[1]} (Figures 1.4.2-1.4.3)")
    fig.tight_layout()
    return fig


def maxpool_figure(model, digit):
    """Figure 1.4.4: MaxPooling2D(2) on a real feature map, and one 4x4 patch -> 2x2."""
    maps = feature_maps(model, prepare_images(digit[None], (28, 28, 1)))
    k = int(np.argmax(maps[0].reshape(-1, maps.shape[-1]).std(axis=0)))
    pooled = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(2)(maps))[0, :, :, k]
    fmap = maps[0, :, :, k]
    # The 4x4 patch (aligned to the pooling grid) with the most going on.
    r, c = max(((r, c) for r in range(0, 24, 2) for c in range(0, 24, 2)),
               key=lambda rc: fmap[rc[0]:rc[0] + 4, rc[1]:rc[1] + 4].std())
    patch = fmap[r:r + 4, c:c + 4]
    fig, axes = plt.subplots(1, 4, figsize=(14, 4))
    axes[0].imshow(fmap, cmap="gray")
    axes[0].add_patch(plt.Rectangle((c - 0.5, r - 0.5), 4, 4, fill=False, edgecolor="red", linewidth=2))
    axes[0].set_title(f"feature map {k}: 26x26")
    axes[1].imshow(pooled, cmap="gray")
    axes[1].set_title("after MaxPooling2D(2): 13x13")
    for ax, values, title in ((axes[2], patch, "a 4x4 patch"), (axes[3], patch.reshape(2, 2, 2, 2).max(axis=(1, 3)),
                                                                 "max of each 2x2: 2x2")):
        ax.imshow(values, cmap="gray", vmin=fmap.min(), vmax=fmap.max())
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="red", fontsize=11)
        ax.set_title(title)
    assert np.allclose(pooled[r // 2:r // 2 + 2, c // 2:c // 2 + 2], patch.reshape(2, 2, 2, 2).max(axis=(1, 3)))
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("MaxPooling2D(2) on a real feature map of the trained CNN (Figure 1.4.4)")
    fig.tight_layout()
    return fig


def curves_figure(runs):
    """Loss and accuracy per epoch of each script's run, from the results JSON files."""
    fig, axes = plt.subplots(2, len(runs), figsize=(4.5 * len(runs), 6.5), squeeze=False)
    for col, run in enumerate(runs):
        history = run["history"]
        epochs = range(1, len(history["loss"]) + 1)
        axes[0, col].plot(epochs, history["loss"], "o-")
        axes[0, col].set_title(f"{run['name']} (Listing {run['listing']})")
        axes[0, col].set_ylabel("training loss")
        axes[1, col].plot(epochs, [100 * a for a in history["accuracy"]], "o-", label="train")
        axes[1, col].axhline(100 * run["test_accuracy"], color="C1", linestyle="--",
                             label=f"test {100 * run['test_accuracy']:.2f}%")
        axes[1, col].set_ylabel("accuracy (%)")
        axes[1, col].legend()
        for ax in axes[:, col]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            outputs.whole_epochs(ax)
    fig.suptitle("Training curves of the three listings" + (" (smoke runs)" if runs[0]["smoke"] else ""))
    fig.tight_layout()
    return fig


def confusion_figure(y_true, y_pred):
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), n in np.ndenumerate(matrix):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > matrix.max() / 3 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    errors = int(matrix.sum() - np.trace(matrix))
    ax.set_title(f"CNN on {matrix.sum():,} test digits: {errors} errors "
                 f"({100 * np.trace(matrix) / matrix.sum():.2f}% accuracy)")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    return fig, matrix


def misclassified_figure(x_test, y_true, y_pred, probabilities, limit=36):
    wrong = np.flatnonzero(y_true != y_pred)[:limit]
    cols = 6
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(x_test[i], cmap="gray")
        ax.set_title(f"true {y_true[i]}, said {y_pred[i]}\n({100 * probabilities[i, y_pred[i]]:.0f}%)", fontsize=8)
    fig.suptitle(f"The CNN's first {len(wrong)} of {int((y_true != y_pred).sum())} misclassified test digits")
    fig.tight_layout()
    return fig


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--models-dir", metavar="DIR", default="outputs",
                        help="where the scripts wrote <name>.json and cnn-mnist.keras")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the sampler's random digits")
    add_data_arg(parser)
    parser.add_argument("--output-dir", metavar="DIR", default="outputs", help="where the figures are written")
    add_smoke_arg(parser)
    return parser.parse_args(argv)


def read_run(path):
    """A script's results JSON, or exit with one line if it is not one."""
    try:
        with open(path, "rb") as f:
            run = json.loads(f.read(10_000_000).decode("utf-8"))
        if not isinstance(run["history"]["loss"], list) or not isinstance(run["test_accuracy"], (int, float)):
            raise TypeError("wrong types")
        return run
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"{path}: not a results JSON of the scripts ({one_line(exc)[:120]})")


def main(argv=None):
    args = parse_args(argv)
    output_dir(args.output_dir)
    model_path = os.path.join(args.models_dir, "cnn-mnist.keras")
    runs = [read_run(path) for path in (os.path.join(args.models_dir, listing.name + ".json")
                                        for listing in LISTINGS.values()) if os.path.isfile(path)]
    try:
        regular_file(model_path, "a Keras model file", ValueError)
    except ValueError as exc:
        if not os.path.lexists(model_path):
            fail(f"{model_path}: no trained CNN here; run `python cnn_mnist.py` first (or pass --models-dir)")
        fail(str(exc))
    try:
        model = keras.saving.load_model(model_path)
    except Exception as exc:  # noqa: BLE001 - any failure: not a loadable Keras model
        fail(f"{model_path}: not a Keras model ({one_line(exc)})")
    (x_train, y_train), (x_test, y_test) = load_data(args)

    def save(fig, name):
        path = outputs.save_figure(fig, os.path.join(args.output_dir, name), dpi=100)
        written.append(path)

    written = []
    save(sampler(x_train, y_train, args.seed), "mnist-samples.png")
    digit = int(np.flatnonzero(y_test == 7)[0])  # the first 7 of the test set
    save(kernel_figure(model, x_test[digit], y_test[digit]), "cnn-kernel.png")
    save(maxpool_figure(model, x_test[digit]), "cnn-maxpool.png")
    if runs:
        save(curves_figure(runs), "training-curves.png")
    probabilities = model.predict(prepare_images(x_test, model.input_shape[1:]), batch_size=256, verbose=0)
    y_pred = probabilities.argmax(axis=1)
    fig, _ = confusion_figure(y_test, y_pred)
    save(fig, "cnn-confusion.png")
    save(misclassified_figure(x_test, y_test, y_pred, probabilities), "cnn-misclassified.png")
    for path in written:
        print(f"Wrote {path}")
    return written


if __name__ == "__main__":
    main()
