"""Grey-level measures (inference.levels): the dense path's grain against the median deviation."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.inference.levels import blur3, grain, noise_level


@pytest.mark.parametrize("sigma", [1.0, 4.0, 12.0])
def test_grain_is_the_noise_level_and_ignores_smooth_ramps(sigma):
    """`grain` (the dense path's noise) agrees with the median deviation on white noise, and unlike it is
    not fooled by a soft stroke edge: a ramp of 100 grey levels across the picture is no noise."""
    rng = np.random.default_rng(0)
    noise = blur3(rng.normal(0, sigma, (120, 120)).astype(np.float32))
    everywhere = np.ones(noise.shape, bool)
    assert grain(noise, everywhere) == pytest.approx(noise_level(noise), rel=0.1)
    ramp = noise + np.linspace(0, 100, 120, dtype=np.float32)[None, :]
    assert grain(ramp, everywhere) == pytest.approx(noise_level(noise), rel=0.1)
    assert noise_level(ramp) > 5 * noise_level(noise)
