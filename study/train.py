"""Training one configuration the way its listing does, for reproduce.py and the benchmarks: the one
home of the listings' sequence outside the listings, with one speed option they lack (docs/speed.md):
``precision="bfloat16"``, Keras' ``mixed_bfloat16`` policy.
"""

import keras
import numpy as np

from ch1.data import NUM_LABELS, prepare_images
from ch1.run import EpochLog, seed_everything


def make_optimizer(name, learning_rate=None):
    """Keras' optimizer ``name`` ("sgd", "adam", "rmsprop"), with ``learning_rate`` if not None."""
    return name if learning_rate is None else type(keras.optimizers.get(name))(learning_rate=learning_rate)


def train_and_evaluate(build_model, build_args, optimizer, data, epochs, batch_size, seed, learning_rate=None,
                       precision="float32", validation=False, verbose=0):
    """Train ``build_model(**build_args)`` on ``data`` (MNIST as loaded) as the listing does: prepare the
    images, compile with categorical cross-entropy, fit, evaluate on the test set (``validation``: after
    every epoch too, the training unchanged). Returns a dict: the model, test and train accuracy, the
    per-epoch history and seconds, and ``diverged``: the epoch whose loss was not finite, or None."""
    (x_train, y_train), (x_test, y_test) = data
    keras.backend.clear_session()  # fresh layer names and graph for every run
    seed_everything(seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        model = build_model(**build_args)
        shape = model.input_shape[1:]
        x_train, x_test = prepare_images(x_train, shape), prepare_images(x_test, shape)
        y_train, y_test = (keras.utils.to_categorical(y, NUM_LABELS) for y in (y_train, y_test))
        model.compile(loss="categorical_crossentropy", optimizer=make_optimizer(optimizer, learning_rate),
                      metrics=["accuracy"])
        log = EpochLog()
        # A loss that turns NaN (a learning rate too large) ends the trial after that epoch: a result.
        model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose,
                  callbacks=[log, keras.callbacks.TerminateOnNaN()],
                  validation_data=(x_test, y_test) if validation else None)
        _, test_accuracy = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    losses = log.history.get("loss", [])
    diverged = next((epoch for epoch, loss in enumerate(losses, 1) if not np.isfinite(loss)), None)
    return {"model": model, "test_accuracy": float(np.nan_to_num(test_accuracy)),
            "train_accuracy": float(np.nan_to_num(log.history["accuracy"][-1])), "history": log.history,
            "epoch_seconds": log.seconds, "params": model.count_params(), "diverged": diverged}
