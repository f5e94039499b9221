"""SimpleRNN MNIST digits classifier (Listing 1.5.1 of Advanced Deep Learning with Keras).

Each image is read as a sequence of 28 rows of 28 pixels by a SimpleRNN(256) with
dropout 0.2, followed by a Dense softmax over the 10 digits; SGD, batch 128, 20 epochs.
Expected: the summary ends with `Total params: 75,530` and the run with
`Test accuracy: 9x.x%` (the book reports 98.0-98.3%).

    python rnn_mnist.py            # the book's run
    python rnn_mnist.py --smoke    # a quick check
"""

import ch1  # plumbing (data, command line, outputs); imported before keras to quiet start-up

import keras
import numpy as np
from keras.layers import Activation, Dense, SimpleRNN
from keras.models import Sequential
from keras.utils import to_categorical

# Network parameters, as in the book: an image is 28 timesteps of 28 pixels.
image_size = 28
input_shape = (image_size, image_size)
num_labels = 10  # Book: len(np.unique(y_train)); a constant so that build_model() needs no data
batch_size = 128
units = 256
dropout = 0.2
epochs = 20


def build_model(units=units, dropout=dropout):
    """The book's RNN: a SimpleRNN over the image rows and a softmax classifier."""
    model = Sequential()
    # Book: SimpleRNN(..., input_shape=input_shape); Keras 3 takes the input as its own layer.
    model.add(keras.Input(shape=input_shape))
    model.add(SimpleRNN(units=units, dropout=dropout))
    model.add(Dense(num_labels))
    model.add(Activation("softmax"))
    return model


def main(argv=None):
    args = ch1.parse_args(__doc__, argv, epochs=epochs, batch_size=batch_size)
    run = ch1.Run("rnn-mnist", "1.5.1", args)

    # Load the MNIST dataset.
    (x_train, y_train), (x_test, y_test) = ch1.load_data(args)

    # Convert the labels to one-hot vectors.
    y_train = to_categorical(y_train, num_labels)
    y_test = to_categorical(y_test, num_labels)

    # Resize and normalize the images.
    x_train = np.reshape(x_train, [-1, image_size, image_size])
    x_test = np.reshape(x_test, [-1, image_size, image_size])
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255

    model = build_model()
    model.summary()
    run.plot_model(model)

    # Loss function for one-hot vectors, the SGD optimizer, and accuracy as the metric.
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    # Train the network (model.fit; with --fast, the same math in one compiled loop per epoch).
    history = ch1.fit(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                      callbacks=run.callbacks, fast=args.fast)

    _, acc = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    print("\nTest accuracy: %.1f%%" % (100.0 * acc))
    return run.finish(model, history, acc)


if __name__ == "__main__":
    main()
