"""An example of a user's model file for `model=custom` (README, "Your own model").

A model function takes the input shape of one sample (without the batch dimension) and returns a
Keras model or layer. With `model.head=true` (the default) it maps the inputs to features and
lossbench adds the loss's task head; with `model.head=false` it must end in the task's outputs.

    lossbench model=custom model.target=examples/my_models.py:small_cnn \
        data=sklearn data.name=digits data.input_shape=[8,8,1] loss=temperature
"""

import keras
from keras import layers


def small_cnn(input_shape, filters=16, dropout=0.2):
    """Two convolutions with BatchNormalization, pooling and Dropout, ending in features."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(filters, 3, padding="same", name="conv_1")(inputs)
    x = layers.BatchNormalization(name="bn_1")(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(2, name="pool_1")(x)
    x = layers.Conv2D(2 * filters, 3, padding="same", name="conv_2")(x)
    x = layers.BatchNormalization(name="bn_2")(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool_2")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, x, name="small_cnn")


def cnn_classifier(input_shape, n_classes=10):
    """A complete classifier ending in class logits (use with model.head=false)."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(8, 3, activation="relu", name="conv"),
            layers.Flatten(),
            layers.Dense(n_classes, name="logits"),
        ],
        name="cnn_classifier",
    )
