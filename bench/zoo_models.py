"""`make bench`'s model zoo: common small architectures as users write them for `model=custom`.

Each function takes one sample's input shape and returns a Keras model ending in features;
lossbench adds the task's head (and `bench/zoo.py` the same head for `model.fit`). They train on
scikit-learn's digits, reshaped per model (`bench/zoo.py`'s `ZOO`).
"""

from __future__ import annotations

import keras
from keras import layers


def mlp(input_shape: tuple[int, ...]) -> keras.Model:
    """Two dense layers."""
    inputs = keras.Input(input_shape)
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, x, name="mlp")


def cnn(input_shape: tuple[int, ...]) -> keras.Model:
    """Two convolutions with pooling."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name="cnn")


def resnet_block(input_shape: tuple[int, ...]) -> keras.Model:
    """A stem and one residual block: two BatchNormalized convolutions and an `Add` skip."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = layers.Conv2D(16, 3, padding="same")(x)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    h = layers.Conv2D(16, 3, padding="same")(h)
    h = layers.BatchNormalization()(h)
    x = layers.Activation("relu")(layers.Add()([x, h]))
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name="resnet_block")


def separable(input_shape: tuple[int, ...]) -> keras.Model:
    """MobileNet-style: a depthwise convolution, a pointwise one, a separable convolution."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Conv2D(32, 1, activation="relu")(x)
    x = layers.SeparableConv2D(32, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name="separable")


def conv1d(input_shape: tuple[int, ...]) -> keras.Model:
    """Two 1-D convolutions over a sequence."""
    inputs = keras.Input(input_shape)
    x = layers.Conv1D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv1D(32, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.GlobalAveragePooling1D()(x), name="conv1d")


def gru(input_shape: tuple[int, ...]) -> keras.Model:
    """A GRU over a sequence, its last state."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layers.GRU(32)(inputs), name="gru")


def lstm(input_shape: tuple[int, ...]) -> keras.Model:
    """An LSTM over a sequence, its last state."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layers.LSTM(32)(inputs), name="lstm")


def transformer(input_shape: tuple[int, ...]) -> keras.Model:
    """One transformer block: self-attention and a feed-forward layer, each with a residual
    and LayerNormalization."""
    inputs = keras.Input(input_shape)
    x = layers.Dense(32)(inputs)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=16)(x, x)
    x = layers.LayerNormalization()(layers.Add()([x, attended]))
    fed = layers.Dense(32)(layers.Dense(64, activation="relu")(x))
    x = layers.LayerNormalization()(layers.Add()([x, fed]))
    return keras.Model(inputs, layers.GlobalAveragePooling1D()(x), name="transformer")


def conv3d(input_shape: tuple[int, ...]) -> keras.Model:
    """Two 3-D convolutions over a volume."""
    inputs = keras.Input(input_shape)
    x = layers.Conv3D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv3D(16, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.GlobalAveragePooling3D()(x), name="conv3d")
