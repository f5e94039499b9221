"""CNN MNIST digits classifier (Listing 1.4.1 of Advanced Deep Learning with Keras).

Three Conv2D-ReLU layers with 64 filters of 3x3, MaxPooling2D(2) after the first two,
Flatten, Dropout(0.2) and a Dense softmax over the 10 digits; Adam, batch 128, 10 epochs.
Expected: the summary ends with `Total params: 80,266` and the run with
`Test accuracy: 99.x%` (the book reports 99.4%).

    python cnn_mnist.py            # the book's run
    python cnn_mnist.py --smoke    # a one-minute check
"""

import ch1  # plumbing (data, command line, outputs); imported before keras to quiet start-up

import keras
import numpy as np
from keras.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from keras.models import Sequential
from keras.utils import to_categorical

# Network parameters, as in the book: the image is processed as is (square grayscale).
image_size = 28
input_shape = (image_size, image_size, 1)
num_labels = 10  # Book: len(np.unique(y_train)); a constant so that build_model() needs no data
batch_size = 128
kernel_size = 3
pool_size = 2
filters = 64
dropout = 0.2
epochs = 10


def build_model(filters=filters, kernel_size=kernel_size, pool_size=pool_size, dropout=dropout):
    """The book's CNN: a stack of CNN-ReLU-MaxPooling, then Dropout and a softmax classifier."""
    model = Sequential()
    # Book: Conv2D(..., input_shape=input_shape); Keras 3 takes the input as its own layer.
    model.add(keras.Input(shape=input_shape))
    model.add(Conv2D(filters=filters, kernel_size=kernel_size, activation="relu"))
    model.add(MaxPooling2D(pool_size))
    model.add(Conv2D(filters=filters, kernel_size=kernel_size, activation="relu"))
    model.add(MaxPooling2D(pool_size))
    model.add(Conv2D(filters=filters, kernel_size=kernel_size, activation="relu"))
    model.add(Flatten())
    # Dropout added as regularizer.
    model.add(Dropout(dropout))
    # The output layer is a 10-dim one-hot vector.
    model.add(Dense(num_labels))
    model.add(Activation("softmax"))
    return model


def main(argv=None):
    args = ch1.parse_args(__doc__, argv, epochs=epochs, batch_size=batch_size)
    run = ch1.Run("cnn-mnist", "1.4.1", args)

    # Load the MNIST dataset.
    (x_train, y_train), (x_test, y_test) = ch1.load_data(args)

    # Convert the labels to one-hot vectors.
    y_train = to_categorical(y_train, num_labels)
    y_test = to_categorical(y_test, num_labels)

    # Resize and normalize the images.
    x_train = np.reshape(x_train, [-1, image_size, image_size, 1])
    x_test = np.reshape(x_test, [-1, image_size, image_size, 1])
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255

    model = build_model()
    model.summary()
    run.plot_model(model)

    # Loss function for one-hot vectors, the Adam optimizer, and accuracy as the metric.
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    # Train the network (model.fit; with --fast, the same math in one compiled loop per epoch).
    history = ch1.fit(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                      callbacks=run.callbacks, fast=args.fast)

    _, acc = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    print("\nTest accuracy: %.1f%%" % (100.0 * acc))
    return run.finish(model, history, acc)


if __name__ == "__main__":
    main()
