"""The bench's rules on tiles make the 4x4 rules' decisions on the same devices.

A 4x4 crossbar (two neurons: columns 2i, 2i+1 are G+ and G- of neuron i) and a 4 x 2 tile
replay the same short device, start from the same pulse counts, and get the same
sequence of update signs; after every update their conductances are equal, and the
resets were sent to the same devices in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossbar_hil.emulator.config import EmulatorConfig, ShiftDistribution
from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.emulator.devices import DeviceModel, ExponentialDevice, TraceDevice
from crossbar_hil.emulator.network.tile_rules import LimTile, RuleConfig, TileRule, make_rule
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, Tile, TileConfig
from crossbar_hil.seam import Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.rules import make_rule as make_bench_rule
from crossbar_hil.training.stop import StopSignal

DEVICE = ExponentialDevice(g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=2.5e-8, beta_nl=2.0, n_max=6)
ROWS, NEURONS = 4, 2


def as_4x4(tile_g: np.ndarray) -> np.ndarray:
    """Tile conductances (2, rows, neurons) laid out as the 4x4 crossbar's (rows, 2 * neurons)."""
    out = np.empty((ROWS, 2 * NEURONS))
    out[:, 0::2], out[:, 1::2] = tile_g[PLUS], tile_g[MINUS]
    return out


def twins(
    rule: str,
    seed: int,
    range_sigma: float = 0.0,
    device: DeviceModel = DEVICE,
    stuck: float = 0.0,
    saturation_pulses: int = 2,
) -> tuple:
    """A 4x4 crossbar and a tile with the same devices (the tile takes the crossbar's range scales
    and stuck devices)."""
    depression = rule == "method_c"
    flat = ShiftDistribution(low_siemens=0.0, high_siemens=0.0)
    xb = EmulatedCrossbar(
        EmulatorConfig(
            device=device,
            shifts=flat,
            depression=depression,
            range_sigma=range_sigma,
            stuck_fraction=stuck,
            seed=seed,
        )
    )
    # The 4x4 emulator potentiates position-wise (a tile of a parametric device, by default,
    # conductance-wise after a depression): the twin tile is given the 4x4's law.
    tile = Tile(
        TileConfig(rows=ROWS, cols=NEURONS, device=device, depression=depression, potentiation="position")
    )
    if xb.range_scale is not None:
        tile.state.range_scale = np.stack((xb.range_scale[:, 0::2], xb.range_scale[:, 1::2]))
    tile.state.stuck = np.stack((xb.stuck[:, 0::2], xb.stuck[:, 1::2]))
    start = np.random.default_rng(seed).integers(0, device.table().size, size=(2, ROWS, NEURONS))
    tile.potentiate(start)
    for side, r, i in zip(*np.nonzero(start), strict=True):
        xb.pulse_many([Pulse(int(r), 2 * int(i) + int(side), 2.0, 1e-3)] * int(start[side, r, i]))
    np.testing.assert_array_equal(as_4x4(tile.conductances()), xb.read_conductances(0.05))
    bench = make_bench_rule(TrainingConfig(rule=rule, update="online", saturation_pulses=saturation_pulses))
    if hasattr(bench, "watch"):
        bench.watch.observe(xb.read_conductances(0.05))
    tile_rule = make_rule(tile, RuleConfig(rule=rule, saturation_pulses=saturation_pulses), log_resets=True)
    return xb, bench, tile, tile_rule


@pytest.mark.parametrize("rule", ["method_a", "method_b", "method_c", "manhattan"])
@pytest.mark.parametrize(("seed", "range_sigma"), [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.3), (4, 0.3)])
def test_a_tile_rule_sends_what_the_4x4_rule_sends(rule: str, seed: int, range_sigma: float) -> None:
    xb, bench, tile, tile_rule = twins(rule, seed, range_sigma)
    device = DeviceAccess(xb, StopSignal())
    signs_rng = np.random.default_rng(100 + seed)
    resets_seen = 0
    for _ in range(60):
        signs = signs_rng.integers(-1, 2, size=(NEURONS, ROWS)).astype(np.int8)
        # Long runs in one direction drive devices into saturation.
        signs[:, :2] = np.abs(signs[:, :2]) if signs_rng.random() < 0.8 else signs[:, :2]
        bench.step(signs, device)
        tile_rule.update(signs.T.copy())
        np.testing.assert_array_equal(as_4x4(tile.conductances()), xb.conductances())
    expected = [(r, c // 2, c % 2) for r, c in device.reset_devices]
    assert tile_rule.counts.reset_log == expected
    assert tile_rule.counts.resets == len(device.reset_devices)
    assert tile_rule.counts.pulses == device.pulses  # the bench counts method c's depressions too
    resets_seen += len(expected)
    if rule in ("method_a", "method_b"):
        assert resets_seen > 0, "the sign sequence must drive devices into saturation"


@pytest.mark.parametrize("rule", ["method_a", "method_b"])
@pytest.mark.parametrize(
    ("window", "stuck", "flat_pulses"),
    [(True, 0.0, 2), (False, 0.0, 2), (True, 0.15, 2), (True, 0.15, 1), (True, 0.15, 3)],
)
def test_long_read_verify_loops_match_too(
    rule: str, window: bool, stuck: float, flat_pulses: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 40-level device: re-programming loops run tens of pulses; the result is still the
    4x4 rule's, pulse for pulse: with the table window the loops read from, without it (a
    device too long for one), with stuck devices (which never move: flat, then saturated),
    and with one, two or three flat pulses making a device saturated."""
    if not window:
        monkeypatch.setattr(LimTile, "WINDOW_MAX_ENTRIES", 0)
    long = ExponentialDevice(
        g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=5e-9, beta_nl=2.0, n_max=40
    )
    xb, bench, tile, tile_rule = twins(rule, 7, 0.3, long, stuck, flat_pulses)
    assert (tile_rule._window is not None) == window
    assert tile.state.stuck.any() == (stuck > 0)
    assert drive_both(xb, bench, tile, tile_rule, seed=7) > 100


def drive_both(xb: EmulatedCrossbar, bench: Any, tile: Tile, tile_rule: TileRule, seed: int) -> int:
    """200 updates, mostly up on two rows, through the 4x4 rule and the tile rule: the same
    conductances after each, the same resets in the same order; the read-verify pulses sent."""
    device = DeviceAccess(xb, StopSignal())
    signs_rng = np.random.default_rng(seed)
    for _ in range(200):
        signs = signs_rng.integers(-1, 2, size=(NEURONS, ROWS)).astype(np.int8)
        signs[:, :2] = np.abs(signs[:, :2]) if signs_rng.random() < 0.8 else -np.abs(signs[:, :2])
        bench.step(signs, device)
        tile_rule.update(signs.T.copy())
        np.testing.assert_array_equal(as_4x4(tile.conductances()), xb.conductances())
    counts = tile_rule.counts
    assert counts.reset_log == [(r, c // 2, c % 2) for r, c in device.reset_devices]
    assert counts.verify_pulses == device.verify_pulses
    return int(counts.verify_pulses)


def test_method_b_at_the_top_resets_the_other_device_once_then_knows_the_weight_is_at_its_extreme() -> None:
    _, _, tile, tile_rule = twins("method_b", 0)
    signs = np.zeros((ROWS, NEURONS), dtype=np.int8)
    signs[0, 0] = 1
    for _ in range(DEVICE.n_max + 3):  # G+ of weight (0, 0) saturates, and is seen saturated
        tile_rule.update(signs)
    assert tile_rule.counts.reset_log[0] == (0, 0, MINUS)
    assert all(side == MINUS for _, _, side in tile_rule.counts.reset_log)
    top = tile.weights_siemens()[0, 0]
    g = tile.conductances()
    assert g[MINUS, 0, 0] == 0.0 and top == g[PLUS, 0, 0]
    n_resets = len(tile_rule.counts.reset_log)
    tile_rule.update(signs)  # G- known to be at the bottom: nothing is sent
    assert len(tile_rule.counts.reset_log) == n_resets
    assert tile.weights_siemens()[0, 0] == top


@pytest.mark.parametrize("rule", ["method_a", "method_b"])
def test_a_measured_trace_with_steps_down_matches_too(rule: str, reference_trace_path: Path) -> None:
    """The measured trace goes down on some pulses: a saturation watch fires mid-curve and a
    read-verify loop may start on a device that already had flat pulses; still the 4x4 rule's."""
    device = TraceDevice(path=reference_trace_path)
    xb, bench, tile, tile_rule = twins(rule, 3, 0.0, device)
    assert drive_both(xb, bench, tile, tile_rule, seed=3) > 0


def test_a_rule_that_only_defines_update_gets_sparse_updates_as_its_full_sign_matrix() -> None:
    """update_outer / update_weights reach a rule written for the full sign matrix (as Huang's
    modes are) as that matrix; a rule defining neither entry is refused when it is declared."""
    seen: list[np.ndarray] = []

    class Recorder(TileRule):
        name = "recorder"

        def update(self, signs: np.ndarray) -> None:
            seen.append(signs.copy())

    tile = Tile(TileConfig(rows=3, cols=4, device=DEVICE))
    Recorder(tile, RuleConfig()).update_outer(np.array([0, 2]), np.array([1, 3]), np.array([True, False]))
    expected = np.zeros((3, 4), dtype=np.int8)
    expected[[0, 2], 1], expected[[0, 2], 3] = 1, -1
    np.testing.assert_array_equal(seen[0], expected)
    with pytest.raises(TypeError, match="update"):

        class Silent(TileRule):  # refused at declaration
            name = "silent"
