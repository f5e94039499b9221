# %% [markdown]
# # Listing 1.5.1: an RNN for MNIST digits
# *Advanced Deep Learning with Keras* (Atienza, 2018), Chapter 1, in Keras 3 as `rnn_mnist.py` runs it: `keras` imports,
# `keras.Input` for `input_shape=`, the script's seed. Expected: `Total params: 75,530`, `Test accuracy: 9x.x%` (book:
# 98.3%). **Run it** in Colab (File > Upload notebook, or Open notebook > GitHub) or Kaggle (File > Import notebook).

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # or "jax", "torch": before Keras is imported (to switch, restart)
import numpy as np
import keras
from keras.models import Sequential
from keras.layers import Dense, Activation, SimpleRNN
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

# resize and normalize
image_size = x_train.shape[1]
x_train = np.reshape(x_train,[-1, image_size, image_size])
x_test = np.reshape(x_test,[-1, image_size, image_size])
x_train = x_train.astype('float32') / 255
x_test = x_test.astype('float32') / 255

# %%
# network parameters
input_shape = (image_size, image_size)
batch_size = 128
units = 256
dropout = 0.2

# model is RNN with 256 units, input is 28-dim vector 28 timesteps
model = Sequential()
model.add(keras.Input(shape=input_shape))
model.add(SimpleRNN(units=units,
                    dropout=dropout))
model.add(Dense(num_labels))
model.add(Activation('softmax'))
model.summary()
try:
    display(plot_model(model, to_file='rnn-mnist.png', show_shapes=True))
except ImportError as exc:  # no pydot or Graphviz here: Keras says which to install
    print(exc)

# %%
# loss function for one-hot vector
# use of sgd optimizer
# accuracy is good metric for classification tasks
model.compile(loss='categorical_crossentropy',
              optimizer='sgd',
              metrics=['accuracy'])
epochs = 20
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
# This run beside the book's and this project's (seeds 0, 1, 2; TensorFlow on a CPU; RESULTS.md, Table 1.5.1 row 1)
print(f"This run:     {100 * acc:.1f}%")
print("The book:     98.3% (its Table 1.5.1: 98.0%)")
print("This project: 98.11 ± 0.09% (mean ± std over 3 seeds)")
