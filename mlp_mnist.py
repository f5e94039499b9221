"""A MLP network for MNIST digits classification (Listing 1.3.2 of Advanced Deep Learning with Keras).

Two hidden Dense(256) layers, each with ReLU and Dropout(0.45), and a Dense softmax over
the 10 digits; Adam, batch 128, 20 epochs. Expected: the summary ends with
`Total params: 269,322`, and the run with `Test accuracy: 98.x%` (the book: 98.3% test
accuracy in 20 epochs).

    python mlp_mnist.py            # the book's run
    python mlp_mnist.py --smoke    # a quick check
"""

# image dimensions (assumed square)
# Book: these follow the imports and the data loading, and take image_size = x_train.shape[1] and
# num_labels = len(np.unique(y_train)); here they come first, with MNIST's values, so that
# build_model() can make the model without the data (reproduce.py and the tests use it) and
# --help can show batch_size before Keras loads.
image_size = 28
input_size = image_size * image_size
num_labels = 10

# network parameters
batch_size = 128
hidden_units = 256
dropout = 0.45

from ch1 import quiet_startup
from ch1.cli import ListingParser

# Book: no command line; the defaults are the book's values (python mlp_mnist.py --help).
parser = ListingParser(__doc__, epochs=20, batch_size=batch_size)
if __name__ == "__main__":
    parser.parse_args()  # --help or a mistyped flag answers here, at once: before Keras loads TensorFlow
quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import keras
import numpy as np
from keras.layers import Activation, Dense, Dropout
from keras.models import Sequential
from keras.regularizers import l2
from keras.utils import to_categorical

from ch1.run import Run, load_data


def build_model(hidden_units=hidden_units, dropout=dropout, activation='relu', l2_weight=None, second_units=None):
    """The book's model. The other arguments make the rows of Table 1.3.2: the hidden
    activation ('linear' for ReLU: None), an L2 weight on the hidden layers' kernels, and a
    second hidden layer wider than the first (default: as wide)."""
    regularizer = l2(l2_weight) if l2_weight else None
    # model is a 3-layer MLP with ReLU and dropout after each layer
    model = Sequential()
    # Book: Dense(hidden_units, input_dim=input_size) as the first layer; Keras 3 warns about
    # input_dim= on a layer and asks for an Input first, which builds the same model.
    model.add(keras.Input(shape=(input_size,)))
    # Book: Dense(hidden_units) and Activation('relu') twice; with the defaults the layers are
    # exactly those (no regularizer, 'relu', the second as wide as the first).
    model.add(Dense(hidden_units, kernel_regularizer=regularizer))
    model.add(Activation(activation))
    model.add(Dropout(dropout))
    model.add(Dense(second_units or hidden_units, kernel_regularizer=regularizer))
    model.add(Activation(activation))
    model.add(Dropout(dropout))
    model.add(Dense(num_labels))
    # this is the output for one-hot vector
    model.add(Activation('softmax'))
    return model


def main(argv=None):
    args = parser.parse_args(argv)
    run = Run("mlp-mnist", "1.3.2", args)

    # load mnist dataset
    # Book: mnist.load_data(); --data or MNIST_DATA may name a local copy (offline).
    (x_train, y_train), (x_test, y_test) = load_data(args)

    # convert to one-hot vector
    y_train = to_categorical(y_train)
    y_test = to_categorical(y_test)

    # resize and normalize
    x_train = np.reshape(x_train, [-1, input_size])
    x_train = x_train.astype('float32') / 255
    x_test = np.reshape(x_test, [-1, input_size])
    x_test = x_test.astype('float32') / 255

    model = build_model()
    model.summary()
    # Book: plot_model(model, to_file='mlp-mnist.png', show_shapes=True), into --output-dir.
    run.plot_model(model)

    # loss function for one-hot vector
    # use of adam optimizer
    # accuracy is good metric for classification tasks
    model.compile(loss='categorical_crossentropy',
                  optimizer='adam',
                  metrics=['accuracy'])
    # train the network
    # Book: epochs=20; callbacks= adds a log of each epoch's time and metrics for the results.
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, callbacks=run.callbacks)

    # validate the model on test dataset to determine generalization
    _, acc = model.evaluate(x_test,
                            y_test,
                            batch_size=batch_size,
                            verbose=0)
    print("\nTest accuracy: %.1f%%" % (100.0 * acc))
    return run.finish(model, acc)


if __name__ == "__main__":
    main()
