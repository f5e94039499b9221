"""RNN for MNIST digits classification (Listing 1.5.1 of Advanced Deep Learning with Keras).

Each image is read as a sequence of 28 rows of 28 pixels by a SimpleRNN(256) with
dropout 0.2, followed by a Dense softmax over the 10 digits; SGD, batch 128, 20 epochs.
Expected: the summary ends with `Total params: 75,530`, and the run with
`Test accuracy: 9x.x%` (the book: 98.3% test accuracy in 20 epochs; Table 1.5.1: 98.0%).

    python rnn_mnist.py            # the book's run
    python rnn_mnist.py --smoke    # a quick check
"""

# network parameters
# Book: these follow the imports and the data loading, and take image_size = x_train.shape[1] and
# num_labels = len(np.unique(y_train)); here they come first, with MNIST's values, so that
# build_model() can make the model without the data (reproduce.py and the tests use it) and
# --help can show batch_size before Keras loads.
image_size = 28
num_labels = 10
input_shape = (image_size, image_size)
batch_size = 128
units = 256
dropout = 0.2

from ch1 import quiet_startup
from ch1.cli import ListingParser

# Book: no command line; the defaults are the book's values (python rnn_mnist.py --help).
parser = ListingParser(__doc__, epochs=20, batch_size=batch_size)
if __name__ == "__main__":
    parser.parse_args()  # --help or a mistyped flag answers here, at once: before Keras loads TensorFlow
quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import keras
import numpy as np
from keras.layers import Activation, Dense, SimpleRNN
from keras.models import Sequential
from keras.utils import to_categorical

from ch1.run import Run, load_data


def build_model(units=units, dropout=dropout):
    """The book's model; ``units`` also makes the 512-unit row of Table 1.5.1."""
    # model is RNN with 256 units, input is 28-dim vector 28 timesteps
    model = Sequential()
    # Book: SimpleRNN(..., input_shape=input_shape) as the first layer; Keras 3 warns about
    # input_shape= on a layer and asks for an Input first, which builds the same model.
    model.add(keras.Input(shape=input_shape))
    model.add(SimpleRNN(units=units,
                        dropout=dropout))
    model.add(Dense(num_labels))
    model.add(Activation('softmax'))
    return model


def main(argv=None):
    args = parser.parse_args(argv)
    run = Run("rnn-mnist", "1.5.1", args)

    # load mnist dataset
    # Book: mnist.load_data(); --data or MNIST_DATA may name a local copy (offline).
    (x_train, y_train), (x_test, y_test) = load_data(args)

    # convert to one-hot vector
    y_train = to_categorical(y_train)
    y_test = to_categorical(y_test)

    # resize and normalize
    x_train = np.reshape(x_train, [-1, image_size, image_size])
    x_test = np.reshape(x_test, [-1, image_size, image_size])
    x_train = x_train.astype('float32') / 255
    x_test = x_test.astype('float32') / 255

    model = build_model()
    model.summary()
    # Book: plot_model(model, to_file='rnn-mnist.png', show_shapes=True), into --output-dir.
    run.plot_model(model)

    # loss function for one-hot vector
    # use of sgd optimizer
    # accuracy is good metric for classification tasks
    model.compile(loss='categorical_crossentropy',
                  optimizer='sgd',
                  metrics=['accuracy'])
    # train the network
    # Book: epochs=20; callbacks= adds a log of each epoch's time and metrics for the results.
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, callbacks=run.callbacks)

    _, acc = model.evaluate(x_test,
                            y_test,
                            batch_size=batch_size,
                            verbose=0)
    print("\nTest accuracy: %.1f%%" % (100.0 * acc))
    return run.finish(model, acc)


if __name__ == "__main__":
    main()
