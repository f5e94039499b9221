"""CNN MNIST digits classification (Listing 1.4.1 of Advanced Deep Learning with Keras).

3-layer CNN for MNIST digits classification
First 2 layers - Conv2D-ReLU-MaxPool
3rd layer - Conv2D-ReLU-Dropout
4th layer - Dense(10)
Output Activation - softmax
Optimizer - Adam

Expected: the summary ends with `Total params: 80,266`, and after 10 epochs
`Test accuracy: 99.x%` (the book: 99.4% test accuracy in 10 epochs).

    python cnn_mnist.py            # the book's run
    python cnn_mnist.py --smoke    # a one-minute check
"""

# network parameters
# Book: these follow the imports and the data loading, and take image_size = x_train.shape[1] and
# num_labels = len(np.unique(y_train)); here they come first, with MNIST's values, so that
# build_model() can make the model without the data (reproduce.py and the tests use it) and
# --help can show batch_size before Keras loads.
image_size = 28
num_labels = 10
# image is processed as is (square grayscale)
input_shape = (image_size, image_size, 1)
batch_size = 128
kernel_size = 3
pool_size = 2
filters = 64
dropout = 0.2

from ch1 import quiet_startup
from ch1.cli import ListingParser

# Book: no command line; the defaults are the book's values (python cnn_mnist.py --help).
parser = ListingParser(__doc__, epochs=10, batch_size=batch_size)
if __name__ == "__main__":
    parser.parse_args()  # --help or a mistyped flag answers here, at once: before Keras loads TensorFlow
quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import keras
import numpy as np
from keras.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from keras.models import Sequential
from keras.utils import to_categorical

from ch1.run import Run, load_data


def build_model(filters=filters, dropout=dropout):
    """The book's model; ``filters`` and ``dropout`` also make the other rows of Table 1.4.1."""
    # model is a stack of CNN-ReLU-MaxPooling
    model = Sequential()
    # Book: Conv2D(..., input_shape=input_shape) as the first layer; Keras 3 warns about
    # input_shape= on a layer and asks for an Input first, which builds the same model.
    model.add(keras.Input(shape=input_shape))
    model.add(Conv2D(filters=filters,
                     kernel_size=kernel_size,
                     activation='relu'))
    model.add(MaxPooling2D(pool_size))
    model.add(Conv2D(filters=filters,
                     kernel_size=kernel_size,
                     activation='relu'))
    model.add(MaxPooling2D(pool_size))
    model.add(Conv2D(filters=filters,
                     kernel_size=kernel_size,
                     activation='relu'))
    model.add(Flatten())
    # dropout added as regularizer
    model.add(Dropout(dropout))
    # output layer is 10-dim one-hot vector
    model.add(Dense(num_labels))
    model.add(Activation('softmax'))
    return model


def main(argv=None):
    args = parser.parse_args(argv)
    run = Run("cnn-mnist", "1.4.1", args)

    # load mnist dataset
    # Book: mnist.load_data(); --data or MNIST_DATA may name a local copy (offline).
    (x_train, y_train), (x_test, y_test) = load_data(args)

    # convert to one-hot vector
    y_train = to_categorical(y_train)
    y_test = to_categorical(y_test)

    # resize and normalize
    x_train = np.reshape(x_train, [-1, image_size, image_size, 1])
    x_test = np.reshape(x_test, [-1, image_size, image_size, 1])
    x_train = x_train.astype('float32') / 255
    x_test = x_test.astype('float32') / 255

    model = build_model()
    model.summary()
    # Book: plot_model(model, to_file='cnn-mnist.png', show_shapes=True), into --output-dir.
    run.plot_model(model)

    # loss function for one-hot vector
    # use of adam optimizer
    # accuracy is good metric for classification tasks
    model.compile(loss='categorical_crossentropy',
                  optimizer='adam',
                  metrics=['accuracy'])
    # train the network
    # Book: epochs=10; callbacks= adds a log of each epoch's time and metrics for the results.
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, callbacks=run.callbacks)

    _, acc = model.evaluate(x_test,
                            y_test,
                            batch_size=batch_size,
                            verbose=0)
    print("\nTest accuracy: %.1f%%" % (100.0 * acc))
    return run.finish(model, acc)


if __name__ == "__main__":
    main()
