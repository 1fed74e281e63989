"""``hil train`` options of the update rule: which rule, online or batch, and the rules' settings."""

from __future__ import annotations

import argparse
from typing import Any

OPTIONS = {
    # option dest: TrainingConfig field
    "rule": "rule",
    "update": "update",
    "reset_time": "reset_time_s",
    "saturation_tol": "saturation_tol_siemens",
    "saturation_pulses": "saturation_pulses",
    "max_verify_pulses": "max_verify_pulses",
    "depress_v": "depress_v",
    "depress_width": "depress_width_s",
}


def add_rule_options(p: argparse.ArgumentParser) -> None:
    """Register the rule options on the ``hil train`` parser."""
    g = p.add_argument_group("update rule")
    g.add_argument(
        "--rule",
        help="planned (default: pulse towards the best reachable positions, planned from read-back "
        "and the device curve), manhattan (the reference's), method_a, method_b or method_c (Lim et "
        "al.: what to do when the device to potentiate is saturated: a resets the pair and "
        "re-programmes it, b resets and re-programmes the other device, c depresses the other device).",
    )
    g.add_argument("--update", help="batch (once per epoch, default) or online (after each pattern).")
    g.add_argument(
        "--reset-time",
        type=float,
        metavar="S",
        help="Instrument time of one reset, in s (default 1, the reference trace's reset pulse).",
    )
    g.add_argument(
        "--saturation-tol",
        type=float,
        metavar="SIEMENS",
        help="A pulse that raised the read-back by no more than this (S) shows a saturated device "
        "(default 0; set it above the read noise).",
    )
    g.add_argument(
        "--saturation-pulses",
        type=int,
        metavar="N",
        help="This many pulses in a row without a rise make a device saturated (default 2).",
    )
    g.add_argument("--max-verify-pulses", type=int, help="Most read-verify pulses per re-programming.")
    g.add_argument("--depress-v", type=float, metavar="V", help="method_c depressing pulse (V, < 0).")
    g.add_argument("--depress-width", type=float, metavar="S", help="method_c depressing pulse width (s).")


def rule_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainingConfig fields the rule options set (only those given)."""
    return {field: getattr(args, dest) for dest, field in OPTIONS.items() if getattr(args, dest) is not None}
