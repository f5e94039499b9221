# %% [markdown]
# # Listing 1.3.1: MNIST digits, counted and sampled
# *Advanced Deep Learning with Keras* (Atienza, 2018), Chapter 1, in Keras 3 as `mnist_sampler.py` runs it: `keras`
# imports, plain integers in the counts (NumPy 2), the script's seed. Expected:
# `Train labels:  {0: 5923, 1: 6742, ...}`, `Test labels:  {0: 980, 1: 1135, ...}` and 25 digits. **Run it** in Colab
# (File > Upload notebook, or Open notebook > GitHub) or Kaggle (File > Import notebook).

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # or "jax", "torch": before Keras is imported (to switch, restart)
import numpy as np
import keras
from keras.datasets import mnist
import matplotlib.pyplot as plt

keras.utils.set_random_seed(0)  # the script's --seed 0: the same 25 digits on every run

# %%
# load dataset
(x_train, y_train), (x_test, y_test) = mnist.load_data()

# count the number of unique train labels
unique, counts = np.unique(y_train, return_counts=True)
print("Train labels: ", dict(zip(unique.tolist(), counts.tolist())))

# count the number of unique test labels
unique, counts = np.unique(y_test, return_counts=True)
print("Test labels: ", dict(zip(unique.tolist(), counts.tolist())))

# %%
# sample 25 mnist digits from train dataset
indexes = np.random.randint(0, x_train.shape[0], size=25)
images = x_train[indexes]
labels = y_train[indexes]

# plot the 25 mnist digits
plt.figure(figsize=(5,5))
for i in range(len(indexes)):
    plt.subplot(5, 5, i + 1)
    image = images[i]
    plt.imshow(image, cmap='gray')
    plt.axis('off')

plt.savefig("mnist-samples.png")
plt.show()
plt.close('all')
