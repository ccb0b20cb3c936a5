"""Shot averaging of store steps (egoflow.segment.shots)."""
import numpy as np
import pytest

from egoflow.segment.shots import ShotError, shot_features


def test_shot_features_bad_input():
    f = np.ones((10, 4), np.float32)
    t = np.arange(10) * 1.0
    np.testing.assert_allclose(shot_features(f * np.arange(10)[:, None], t, 2, 5.0, "v"), [[2] * 4, [7] * 4])
    with pytest.raises(ShotError, match="'v'.*shots of 5.0s have no feature step"):
        shot_features(f, t, 10, 5.0, "v")
    f[3, 1] = np.nan
    with pytest.raises(ShotError, match="'v'.*NaN"):
        shot_features(f, t, 2, 5.0, "v")
