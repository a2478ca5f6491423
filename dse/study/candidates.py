"""The zoo subset a study may assign: filtered, deduplicated, with a cost, the exact design first.

Designs are ordered by energy, most expensive first (index 0 is the exact design), so neighbouring
gene values are similar designs. A design that costs as much as exact or more is dominated by
exact and left out; so is a second design with the same LUT as an earlier one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from multipliers import Multiplier

    from .config import StudyConfig

logger = logging.getLogger(__name__)


def select_multipliers(config: "StudyConfig") -> list["Multiplier"]:
    """The study's candidate designs (exact first, then by decreasing energy)."""
    from multipliers import ImportDesignError, UnknownMultiplierError, Zoo
    from multipliers._record import COST_METHOD_PREFERENCE

    section = config.multipliers
    where = str(config.path)
    try:
        zoo = Zoo.default(list(section.imports))
    except (ImportDesignError, ValueError) as error:
        raise UserError(f"{where}: multipliers.imports: {error}") from None
    for key in ("names", "exclude"):
        for name in getattr(section, key):
            if name not in zoo:
                raise UserError(f"{where}: multipliers.{key}: {zoo.unknown_message(name)}")
    try:
        chosen = list(zoo.select(families=section.families or None, signed=config.signed, names=section.names or None))
    except UnknownMultiplierError as error:
        raise UserError(f"{where}: multipliers.families: {error}") from None
    kind = "signed" if config.signed else "unsigned"
    wrong = [n for n in section.names if zoo[n].signed != config.signed]
    if wrong:
        raise UserError(f"{where}: multipliers.names: {wrong[0]} is not {kind}; the {config.quantization.scheme} scheme needs {kind} designs")
    exact = next(m for m in zoo.select(families=["exact"], signed=config.signed))
    method = section.cost_method or None
    if method is not None and method not in COST_METHOD_PREFERENCE:
        raise UserError(f"{where}: multipliers.cost_method {method!r} is not a cost estimate; choose one of "
                        f"{', '.join(COST_METHOD_PREFERENCE)} (or leave it out: the most trusted one)")
    if method is not None and method not in exact.costs:  # every cost is relative to exact: 1.0 by definition
        from multipliers import HardwareCost

        exact = exact.with_cost(HardwareCost(method, 1.0, 1.0, 1.0, source="the exact design (reference)"))
    out: list[Multiplier] = []
    seen = {exact.lut_sha256}
    skipped: list[str] = []
    for m in chosen:
        if m.name in section.exclude or m.lut_sha256 in seen:
            continue
        seen.add(m.lut_sha256)
        try:
            energy = m.cost(method).energy
        except KeyError:
            if m.name in section.names:
                raise UserError(f"{where}: multipliers.names: {m.name} has no {method or 'cost'} estimate") from None
            skipped.append(m.name)
            continue
        if energy < 1.0:
            out.append(m)
    if skipped:
        logger.warning("left out %d designs without a %s cost estimate: %s", len(skipped), method or "", ", ".join(skipped))
    if not out:
        raise UserError(f"{where}: [multipliers] selects no {kind} design cheaper than the exact one")
    out.sort(key=lambda m: (-m.cost(method).energy, m.name))
    return [exact] + out
