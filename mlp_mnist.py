"""MLP MNIST digits classifier (Listing 1.3.2 of Advanced Deep Learning with Keras).

Two hidden Dense(256) layers, each with ReLU and Dropout(0.45), and a Dense softmax
over the 10 digits; Adam, batch 128, 20 epochs. Expected: the summary ends with
`Total params: 269,322` and the run with `Test accuracy: 98.x%` (the book reports 98.3%).

    python mlp_mnist.py            # the book's run
    python mlp_mnist.py --smoke    # a quick check
"""

import ch1  # plumbing (data, command line, outputs); imported before keras to quiet start-up

import keras
import numpy as np
from keras.layers import Activation, Dense, Dropout
from keras.models import Sequential
from keras.regularizers import l2
from keras.utils import to_categorical

# Network parameters, as in the book: the image is flattened to a 784-dim vector.
image_size = 28
input_size = image_size * image_size
num_labels = 10  # Book: len(np.unique(y_train)); a constant so that build_model() needs no data
batch_size = 128
hidden_units = 256
dropout = 0.45
epochs = 20


def build_model(hidden_units=(hidden_units, hidden_units), dropout=dropout, activation="relu", l2_weight=None):
    """The book's MLP: two hidden Dense-Activation-Dropout blocks and a softmax classifier.

    The other arguments make the rows of Table 1.3.2: the two hidden layers' widths, the
    dropout rate (0 for none), the hidden activation ("linear" for the ReLU: None row) and
    an L2 weight on the hidden layers' kernels.
    """
    regularizer = l2(l2_weight) if l2_weight else None
    model = Sequential()
    # Book: Dense(hidden_units, input_dim=input_size); Keras 3 takes the input as its own layer.
    model.add(keras.Input(shape=(input_size,)))
    model.add(Dense(hidden_units[0], kernel_regularizer=regularizer))
    model.add(Activation(activation))
    model.add(Dropout(dropout))
    model.add(Dense(hidden_units[1], kernel_regularizer=regularizer))
    model.add(Activation(activation))
    model.add(Dropout(dropout))
    # The output layer is a 10-dim one-hot vector.
    model.add(Dense(num_labels))
    model.add(Activation("softmax"))
    return model


def main(argv=None):
    args = ch1.parse_args(__doc__, argv, epochs=epochs, batch_size=batch_size)
    run = ch1.Run("mlp-mnist", "1.3.2", args)

    # Load the MNIST dataset.
    (x_train, y_train), (x_test, y_test) = ch1.load_data(args)

    # Convert the labels to one-hot vectors.
    y_train = to_categorical(y_train, num_labels)
    y_test = to_categorical(y_test, num_labels)

    # Resize and normalize the images.
    x_train = np.reshape(x_train, [-1, input_size])
    x_test = np.reshape(x_test, [-1, input_size])
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

    # Validate the model on the test dataset to determine generalization.
    _, acc = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    print("\nTest accuracy: %.1f%%" % (100.0 * acc))
    return run.finish(model, history, acc)


if __name__ == "__main__":
    main()
