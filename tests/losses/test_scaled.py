"""lossbench.losses.scaled: constant factor and schedules."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench import losses as L
from tests.losses.references import CASES, values


def test_scaled_is_factor_times_base_and_schedules_change_with_epochs():
    base, y_true, y_pred = CASES["grouped_dynamic"]
    scaled = L.ScaledLoss(base, factor=2.5)
    np.testing.assert_allclose(
        values(scaled, y_true, y_pred), 2.5 * values(base, y_true, y_pred), rtol=1e-6
    )
    warm = L.ScaledLoss(base, schedule="warmup", warmup_epochs=2.0, start_factor=0.2)
    assert [warm.schedule_multiplier(e) for e in (0, 1, 2, 5)] == pytest.approx([0.2, 0.6, 1, 1])
    step = L.ScaledLoss(base, schedule="step", step_epoch=3, step_factor=0.1)
    assert [step.schedule_multiplier(e) for e in (0, 2.99, 3, 9)] == [1, 1, 0.1, 0.1]
    assert L.ScaledLoss(base).schedule_multiplier(7.0) == 1.0
