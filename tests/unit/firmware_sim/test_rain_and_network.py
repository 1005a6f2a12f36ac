"""Rainfall shapes and generated networks, without running SWMM."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim._network import full_capacity_m3s, generate_network
from firmware_sim._rain import LSHA_TO_MMH, chicago_mmh, storm_intensity_lsha, typhoon_mmh


def test_storm_intensity_grows_with_return_period_and_falls_with_duration() -> None:
    assert storm_intensity_lsha(10, 60) > storm_intensity_lsha(1, 60)
    assert storm_intensity_lsha(1, 10) > storm_intensity_lsha(1, 120)
    with pytest.raises(ValueError, match="positive"):
        storm_intensity_lsha(0, 60)


def test_chicago_hyetograph_holds_the_formula_depth_and_peaks_where_asked() -> None:
    steps = chicago_mmh(5, 120, 0.4, 5)
    depth_mm = steps.sum() * 5 / 60
    expected = storm_intensity_lsha(5, 120) * LSHA_TO_MMH * 2
    assert depth_mm == pytest.approx(expected, rel=1e-6)
    # The grid starts 4 minutes early so that one step, minutes 46-51, holds the peak (48 = 40 %).
    assert int(np.argmax(steps)) == 10
    assert chicago_mmh(10, 120, 0.4, 5).sum() > steps.sum()


def test_typhoon_total_is_exact_and_deterministic() -> None:
    series = typhoon_mmh(20, 320, 90, 5, seed=1)
    assert series.sum() * 5 / 60 == pytest.approx(320)
    assert series.max() > 50
    assert np.array_equal(series, typhoon_mmh(20, 320, 90, 5, seed=1))


def test_network_is_a_tree_draining_to_its_outfall() -> None:
    net = generate_network("jiaojiang", 30)
    out = net.outgoing()
    assert len(out) == len(net.junctions) == 30
    for j in net.junctions:
        node, hops = j.name, 0
        while node not in {o.name for o in net.outfalls}:
            node = out[node].downstream
            hops += 1
            assert hops <= 30
    for c in net.conduits:
        assert c.slope > 0
        assert c.full_capacity_m3s() == pytest.approx(full_capacity_m3s(c.diameter_m, c.slope))
    assert generate_network("jiaojiang", 30) == net
    assert generate_network("linhai", 30) != net


def test_pipes_grow_downstream_on_the_trunk() -> None:
    net = generate_network("wenling", 30)
    trunk_y = net.outfalls[0].y_m
    trunk = [
        c
        for c in net.conduits
        if next(j for j in net.junctions if j.name == c.upstream).y_m == trunk_y
    ]
    diameters = [c.diameter_m for c in trunk]
    assert diameters == sorted(diameters)
