# %% [markdown]
# # Listing 1.4.1: a CNN for MNIST digits
# *Advanced Deep Learning with Keras* (Atienza, 2018), Chapter 1, in Keras 3 as `cnn_mnist.py` runs it: `keras` imports,
# `keras.Input` for `input_shape=`, the script's seed. Expected: `Total params: 80,266`, `Test accuracy: 99.x%` (book:
# 99.4%). **Run it** in Colab (File > Upload notebook, or Open notebook > GitHub) or Kaggle (File > Import notebook).

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # or "jax", "torch": before Keras is imported (to switch, restart)
import numpy as np
import keras
from keras.models import Sequential
from keras.layers import Activation, Dense, Dropout
from keras.layers import Conv2D, MaxPooling2D, Flatten
from keras.utils import to_categorical, plot_model
from keras.datasets import mnist

# %%
# A GPU trains if there is one (Colab: Runtime > Change runtime type), else the CPU.
if keras.config.backend() == "torch":
    import torch
    print("torch:", "GPU" if torch.cuda.is_available() else "no GPU, the CPU trains")
else:
    print(f"{keras.config.backend()}: {keras.distribution.list_devices()}")
keras.utils.set_random_seed(0)  # the script's --seed 0: the same numbers again on the same machine and backend
if keras.config.backend() == "tensorflow":
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()

# %%
# load mnist dataset
(x_train, y_train), (x_test, y_test) = mnist.load_data()

# compute the number of labels
num_labels = len(np.unique(y_train))

# convert to one-hot vector
y_train = to_categorical(y_train)
y_test = to_categorical(y_test)

# input image dimensions
image_size = x_train.shape[1]
# resize and normalize
x_train = np.reshape(x_train,[-1, image_size, image_size, 1])
x_test = np.reshape(x_test,[-1, image_size, image_size, 1])
x_train = x_train.astype('float32') / 255
x_test = x_test.astype('float32') / 255

# %%
# network parameters
# image is processed as is (square grayscale)
input_shape = (image_size, image_size, 1)
batch_size = 128
kernel_size = 3
pool_size = 2
filters = 64
dropout = 0.2

# model is a stack of CNN-ReLU-MaxPooling
model = Sequential()
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
model.summary()
try:
    display(plot_model(model, to_file='cnn-mnist.png', show_shapes=True))
except ImportError as exc:  # no pydot or Graphviz here: Keras says which to install
    print(exc)

# %%
# loss function for one-hot vector
# use of adam optimizer
# accuracy is good metric for classification tasks
model.compile(loss='categorical_crossentropy',
              optimizer='adam',
              metrics=['accuracy'])
epochs = 10
if os.environ.get("CH1_NOTEBOOK_QUICK") == "1":  # this project's offline tests only: 1 epoch, 1,000 images
    epochs, x_train, y_train, x_test, y_test = 1, x_train[:1000], y_train[:1000], x_test[:1000], y_test[:1000]
# train the network
model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size)

# %%
_, acc = model.evaluate(x_test,
                        y_test,
                        batch_size=batch_size,
                        verbose=0)
print("\nTest accuracy: %.1f%%" % (100.0 * acc))

# %%
# This run beside the book's and this project's (seeds 0, 1, 2; TensorFlow on a CPU; RESULTS.md, Table 1.4.1 row 3)
print(f"This run:     {100 * acc:.1f}%")
print("The book:     99.4% (its Table 1.4.1: 99.4%)")
print("This project: 99.28 ± 0.04% (mean ± std over 3 seeds)")
