"""Training: the book's ``model.fit``, and a fast path with the same math (``--fast``).

The book's models are tiny, so on a GPU plain ``model.fit`` on NumPy arrays spends most
of its time feeding batches, not computing. The fast path (JAX backend) keeps the dataset
on the device and runs each epoch as one compiled loop over shuffled minibatches with
Keras' stateless APIs (``model.stateless_call``, ``optimizer.stateless_apply``): the same
model and optimizer objects, the same loss, batch size, epochs and update rule, so the
weights are evaluated and saved as usual afterwards. Where it does not apply (another
backend) ``fit`` says so and uses ``model.fit``.
"""

import time

import keras
import numpy as np


class History:
    """What ``model.fit`` returns that the scripts use: ``.history`` (per-epoch lists)."""

    def __init__(self):
        self.history = {"loss": [], "accuracy": []}


def fast_path_available():
    return keras.backend.backend() == "jax"


def fit(model, x, y, epochs, batch_size, callbacks=(), fast=False, shuffle=True, verbose="auto"):
    """``model.fit(x, y, epochs=..., batch_size=...)``, or with ``fast`` the compiled loop."""
    if fast and not fast_path_available():
        print(f"--fast: no fast path on the {keras.backend.backend()} backend; training with model.fit")
    if not fast or not fast_path_available():
        return model.fit(x, y, epochs=epochs, batch_size=batch_size, callbacks=list(callbacks), shuffle=shuffle,
                         verbose=verbose)
    return _fit_jax(model, x, y, epochs, batch_size, callbacks, shuffle, verbose)


def _fit_jax(model, x, y, epochs, batch_size, callbacks, shuffle, verbose):
    import jax
    import jax.numpy as jnp

    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.get(model.loss)
    n = len(x)
    steps, rest = divmod(n, batch_size)  # like model.fit: full batches, then one smaller batch

    def train_step(state, batch):
        trainable, non_trainable, opt_vars = state
        xb, yb = batch

        def compute_loss(trainable, non_trainable):
            y_pred, non_trainable, losses = model.stateless_call(
                trainable, non_trainable, xb, training=True, return_losses=True)
            loss = jnp.mean(loss_fn(yb, y_pred))
            if losses:
                loss = loss + sum(losses)  # e.g. L2 kernel regularizers
            return loss, (y_pred, non_trainable)

        (loss, (y_pred, non_trainable)), grads = jax.value_and_grad(compute_loss, has_aux=True)(
            trainable, non_trainable)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        correct = jnp.sum(jnp.argmax(y_pred, -1) == jnp.argmax(yb, -1))
        return (trainable, non_trainable, opt_vars), (loss * len(xb), correct)

    @jax.jit
    def run_epoch(state, x_all, y_all, order):
        """One epoch: shuffled full batches in a compiled scan, then the last smaller batch."""
        head = order[: steps * batch_size].reshape(steps, batch_size)
        state, (losses, corrects) = jax.lax.scan(
            lambda s, idx: train_step(s, (x_all[idx], y_all[idx])), state, head)
        loss_sum, correct = jnp.sum(losses), jnp.sum(corrects)
        if rest:
            idx = order[steps * batch_size:]
            state, (loss, c) = train_step(state, (x_all[idx], y_all[idx]))
            loss_sum, correct = loss_sum + loss, correct + c
        return state, loss_sum / n, correct / n

    # The dataset goes to the device once; each epoch gets a fresh permutation from NumPy's
    # seeded generator (keras.utils.set_random_seed seeds it), as model.fit shuffles.
    x_all, y_all = jnp.asarray(x), jnp.asarray(y)
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    history = History()
    for callback in callbacks:
        callback.set_model(model)
    for epoch in range(epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        start = time.perf_counter()
        order = np.random.permutation(n) if shuffle else np.arange(n)
        state, loss, accuracy = run_epoch(state, x_all, y_all, jnp.asarray(order))
        loss, accuracy = float(loss), float(accuracy)  # waits for the device
        history.history["loss"].append(loss)
        history.history["accuracy"].append(accuracy)
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"loss": loss, "accuracy": accuracy})
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - start:.2f}s - "
                  f"accuracy: {accuracy:.4f} - loss: {loss:.4f}", flush=True)
    # Hand the trained state back to the Keras objects: evaluate and save work as usual.
    for variables, values in zip((model.trainable_variables, model.non_trainable_variables, optimizer.variables),
                                 state):
        for variable, value in zip(variables, values):
            variable.assign(value)
    return history
