"""Demonstrates how to sample and plot MNIST digits (Listing 1.3.1 of Advanced Deep Learning with Keras).

Loads MNIST, prints how many training and test images there are of each digit, and plots
25 random training digits. Expected: `Train labels:  {0: 5923, 1: 6742, ...}`,
`Test labels:  {0: 980, 1: 1135, ...}`, and `mnist-samples.png` under --output-dir.

    python mnist_sampler.py            # the book's run (seed 0)
    python mnist_sampler.py --seed 1   # 25 other digits
"""

from ch1 import quiet_startup
from ch1.cli import sampler_parser

# Book: no command line; --seed (default 0) makes the 25 digits the same on every run.
parser = sampler_parser(__doc__)
if __name__ == "__main__":
    parser.parse_args()  # --help or a mistyped flag answers here, at once: before Keras loads TensorFlow
quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import os

import numpy as np

from ch1 import files, outputs
from ch1.cli import ensure_output_dir
from ch1.outputs import plt
from ch1.run import load_data, seed_everything


def plot_samples(x_train, y_train):
    """The book's 25 random training digits in a 5x5 grid (``figures.py`` draws it too). The book
    picks their labels too, and shows none."""
    # sample 25 mnist digits from train dataset
    indexes = np.random.randint(0, x_train.shape[0], size=25)
    images = x_train[indexes]
    labels = y_train[indexes]

    # plot the 25 mnist digits
    figure = plt.figure(figsize=(5, 5))
    for i in range(len(indexes)):
        plt.subplot(5, 5, i + 1)
        image = images[i]
        plt.imshow(image, cmap='gray')
        plt.axis('off')
    return figure


def main(argv=None):
    args = parser.parse_args(argv)
    ensure_output_dir(args.output_dir)
    seed_everything(args.seed)

    # load dataset
    # Book: mnist.load_data(); --data or MNIST_DATA may name a local copy (offline).
    (x_train, y_train), (x_test, y_test) = load_data(args)

    # count the number of unique train labels
    unique, counts = np.unique(y_train, return_counts=True)
    # Book: dict(zip(unique, counts)); NumPy 2 prints its integers as np.uint8(0): np.int64(5923),
    # so they are made Python integers first and print as the book shows, {0: 5923, ...}.
    train_labels = dict(zip(unique.tolist(), counts.tolist()))
    print("Train labels: ", train_labels)

    # count the number of unique test labels
    unique, counts = np.unique(y_test, return_counts=True)
    test_labels = dict(zip(unique.tolist(), counts.tolist()))
    print("Test labels: ", test_labels)

    figure = plot_samples(x_train, y_train)
    # Book: plt.savefig("mnist-samples.png"), then plt.show(); here the PNG goes into --output-dir
    # (written whole or not at all), and nothing is shown: the scripts run headless. The counts
    # and the seed are kept beside it, as mnist-samples.json (the docs are made from it).
    path = outputs.save_figure(figure, os.path.join(args.output_dir, "mnist-samples.png"))
    plt.close('all')
    record = files.write_json(os.path.join(args.output_dir, "mnist-samples.json"), {
        "name": "mnist-samples", "listing": "1.3.1", "seed": args.seed, "train_labels": train_labels,
        "test_labels": test_labels, "figure": "mnist-samples.png"})
    print(f"Wrote {path}, {record}")
    return path


if __name__ == "__main__":
    main()
