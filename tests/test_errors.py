"""lossbench.errors: every error the user meets is one line naming the key."""

from __future__ import annotations

import pytest

from lossbench.config.compose import compose_raw
from lossbench.errors import one_line


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("loss.gama=3", "invalid value for `loss.gama`: Key 'gama' not in 'FocalConfig'; did you "
         "mean `loss.gamma`? (the keys of `loss`: name, task, gamma, alpha)"),
        ("trainer.epoch=3", "did you mean `trainer.epochs`?"),
        ("data.n_sample=10", "did you mean `data.n_samples`?"),
    ],
)  # fmt: skip
def test_an_unknown_key_names_the_closest_valid_one_and_its_groups_keys(override, line):
    with pytest.raises(Exception) as info:
        compose_raw(["loss=focal", override])
    message = one_line(info.value)
    assert "\n" not in message and line in message, message


def test_a_key_like_no_valid_one_lists_the_keys_without_a_guess():
    with pytest.raises(Exception) as info:
        compose_raw(["loss=focal", "loss.zzzz=1"])
    message = one_line(info.value)
    assert "did you mean" not in message
    assert message.endswith("(the keys of `loss`: name, task, gamma, alpha)"), message
