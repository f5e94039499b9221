"""Training one configuration the way its listing does, for reproduce.py and the benchmarks.

:func:`train_and_evaluate` is the one home of the listings' sequence outside the listings: prepare
the data, compile with categorical cross-entropy and accuracy, fit, evaluate on the test set. Two
speed options live here and not in the listings (docs/speed.md): ``precision="bfloat16"``, Keras'
``mixed_bfloat16`` policy, and ``fast=True``, each epoch as one compiled JAX loop with the dataset on
the device (:func:`fit_compiled`), meant for an accelerator: on a CPU, where it was measured slower
than ``model.fit``, :func:`fit` says so in one line and uses ``model.fit``.
"""

import time

import keras
import numpy as np

from ch1.data import NUM_LABELS, prepare_images
from ch1.run import EpochLog, seed_everything


def make_optimizer(name, learning_rate=None):
    """Keras' optimizer ``name`` ("sgd", "adam", "rmsprop") with its default settings, or with
    ``learning_rate`` instead of the default one."""
    if learning_rate is None:
        return name
    config = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    return config[name](learning_rate=learning_rate)


def accelerator():
    """The accelerator JAX computes on (e.g. "gpu"), or None: the fast path is for those only."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    platform = jax.devices()[0].platform
    return None if platform == "cpu" else platform


def fit(model, x, y, epochs, batch_size, callbacks=(), fast=False, validation_data=None, verbose=0):
    """``model.fit(x, y, epochs=..., batch_size=...)``; with ``fast`` on an accelerator, :func:`fit_compiled`."""
    if fast and accelerator() is None:
        print("fast path: meant for JAX on an accelerator, slower than model.fit on a CPU; "
              "training with model.fit", flush=True)
    elif fast and validation_data is None:
        return fit_compiled(model, x, y, epochs, batch_size, callbacks, verbose=verbose)
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, callbacks=list(callbacks),
                     validation_data=validation_data, verbose=verbose)


def train_and_evaluate(build_model, build_args, optimizer, data, epochs, batch_size, seed, learning_rate=None,
                       precision="float32", fast=False, validation=False, verbose=0):
    """Train one configuration as its listing does and evaluate it on the test set.

    ``build_model(**build_args)`` makes the model; ``data`` is MNIST as loaded (uint8 images,
    integer labels). ``validation`` also evaluates the test set after every epoch (Keras'
    ``validation_data``; the training itself is unchanged). Returns a dict: the model,
    test and train accuracy, the per-epoch history and seconds, and ``diverged``: the epoch whose
    loss was NaN or infinite (training stopped there), or None.
    """
    (x_train, y_train), (x_test, y_test) = data
    keras.backend.clear_session()  # fresh layer names and graph for every run
    seed_everything(seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        model = build_model(**build_args)
        shape = model.input_shape[1:]
        x_train, x_test = prepare_images(x_train, shape), prepare_images(x_test, shape)
        y_train = keras.utils.to_categorical(y_train, NUM_LABELS)
        y_test = keras.utils.to_categorical(y_test, NUM_LABELS)
        model.compile(loss="categorical_crossentropy", optimizer=make_optimizer(optimizer, learning_rate),
                      metrics=["accuracy"])
        log = EpochLog()
        # A loss that turns NaN (a learning rate too large) ends the trial after that epoch: a result.
        fit(model, x_train, y_train, epochs, batch_size, callbacks=[log, keras.callbacks.TerminateOnNaN()],
            fast=fast, validation_data=(x_test, y_test) if validation else None, verbose=verbose)
        _, test_accuracy = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    losses = log.history.get("loss", [])
    diverged = next((epoch for epoch, loss in enumerate(losses, 1) if not np.isfinite(loss)), None)
    return {"model": model, "test_accuracy": float(np.nan_to_num(test_accuracy)),
            "train_accuracy": float(np.nan_to_num(log.history["accuracy"][-1])), "history": log.history,
            "epoch_seconds": log.seconds, "params": model.count_params(), "diverged": diverged}


def fit_compiled(model, x, y, epochs, batch_size, callbacks=(), shuffle=True, verbose=0):
    """The same training math as ``model.fit`` in one compiled JAX loop per epoch (JAX backend): each
    epoch's shuffled minibatches in a ``jax.lax.scan`` with Keras' stateless APIs, the dataset on the
    device; the model is evaluated and saved as usual afterwards. With ``verbose``, one line per epoch."""
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
    history = {"loss": [], "accuracy": []}
    for callback in callbacks:
        callback.set_model(model)
    for epoch in range(epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        start = time.perf_counter()
        order = np.random.permutation(n) if shuffle else np.arange(n)
        state, loss, accuracy = run_epoch(state, x_all, y_all, jnp.asarray(order))
        loss, accuracy = float(loss), float(accuracy)  # waits for the device
        history["loss"].append(loss)
        history["accuracy"].append(accuracy)
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
