"""Each optimizer-chapter verdict is a pure function of measured numbers: it must come out each way.

(ch03.optimizer_comparison and ch04.lr_schedules: tests/atlas/test_repair_r3.py.)"""

from __future__ import annotations

from terrainlab.atlas.chapters.ch03.momentum_as_physics import decide_momentum_physics
from terrainlab.atlas.chapters.ch03.nearest_minimum import decide_nearest_minimum
from terrainlab.atlas.chapters.ch04.adam_is_not_curvature import decide_adam_curvature
from terrainlab.atlas.chapters.ch04.augmentation_is_ridge import decide_augmentation
from terrainlab.atlas.chapters.ch04.elastic_net_kink import decide_elastic_net_kink
from terrainlab.atlas.chapters.ch04.flatness_bias import decide_flatness_bias
from terrainlab.atlas.chapters.ch04.l1_vs_l2 import decide_l1_vs_l2


def test_l1_vs_l2():
    assert decide_l1_vs_l2(17, 15, 0) == "holds"
    assert decide_l1_vs_l2(17, 0, 0) == "holds-with-correction"
    assert decide_l1_vs_l2(0, 0, 0) == "fails"


def test_elastic_net_kink():
    assert decide_elastic_net_kink([1.0, 1.0, 1.0]) == "fails"
    assert decide_elastic_net_kink([0.0, 0.001, 0.0]) == "holds"
    assert decide_elastic_net_kink([1.0, 0.5]) == "inconclusive"


def test_adam_curvature():
    assert decide_adam_curvature(10.9, 1.0) == "fails"
    assert decide_adam_curvature(1.0, 100.0) == "holds"
    assert decide_adam_curvature(1.0, 50.0) == "inconclusive"


def test_augmentation():
    assert decide_augmentation(0.1459, 0.1477, 6.86) == "fails"
    assert decide_augmentation(0.1459, 1e-9, 6.86) == "holds"
    assert decide_augmentation(0.1459, 0.10, 6.86) == "holds-with-correction"


def test_flatness_bias():
    assert decide_flatness_bias(0.0, 0.38) == "holds"
    assert decide_flatness_bias(0.01, 0.38) == "fails"
    assert decide_flatness_bias(0.0, 0.0) == "inconclusive"


def test_nearest_minimum():
    assert decide_nearest_minimum(0.2) == "fails"
    assert decide_nearest_minimum(0.0) == "holds"


def test_momentum_physics():
    assert decide_momentum_physics(1.01, 0.005) == "holds"
    assert decide_momentum_physics(0.1, 0.5) == "fails"
    assert decide_momentum_physics(1.01, 0.2) == "holds-with-correction"
