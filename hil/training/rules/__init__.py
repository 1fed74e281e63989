"""Update rules, each behind :class:`~crossbar_hil.training.rules.base.UpdateRule`, chosen by name.

To add a rule: subclass ``UpdateRule`` in a module of its own here, give it a
``name``, and list it in :data:`RULES`; ``TrainingConfig.rule`` then accepts it.
"""

from __future__ import annotations

from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.rules.base import EpochContext, UpdateRule
from crossbar_hil.training.rules.lim import MethodA, MethodB, MethodC
from crossbar_hil.training.rules.manhattan import Manhattan
from crossbar_hil.training.rules.planned import Planned

RULES: dict[str, type[UpdateRule]] = {
    rule.name: rule for rule in (Manhattan, MethodA, MethodB, MethodC, Planned)
}
"""Every rule by the name a run config uses."""


def make_rule(config: TrainingConfig) -> UpdateRule:
    """The rule ``config.rule`` names, set up with ``config``."""
    try:
        return RULES[config.rule](config)
    except KeyError:
        raise ValueError(f"rule {config.rule!r} is not known; known rules: {', '.join(RULES)}") from None


__all__ = ["RULES", "EpochContext", "UpdateRule", "make_rule"]
