"""Energy per multiplication from switching activity of the synthesised gate netlist.

Model. A stream of ``samples + 1`` operand pairs is drawn, activation a ~ p and weight b ~ q
independently (uniform when not given), consecutive pairs independent (every cycle brings a new
activation and a new weight, as in an output-stationary array). The netlist is simulated in numpy:
first settled on pair t-1, then pair t is applied and all cells update synchronously with one unit
delay each until the netlist settles again, so glitches (spurious transitions from unequal path
delays, large in array multipliers) are counted along with functional transitions
(``glitches=False`` counts only the zero-delay transitions between settled states). Each
transition of a net costs its capacitance proxy (the transistor gates it drives, its driver's
output node, an output register's input, the driving cell's internal node; see :mod:`.liberty`),
so the dynamic energy per multiplication is E = sum_n C_n * toggles_n / samples in units of
C_gate V^2 / 2; leakage is not modelled. ``relative`` divides by the same figure of the exact
multiplier of the same signedness under uniform operands (same samples, seed and glitch
setting), and ``pj`` scales that by 0.2 pJ, a 45 nm 8-bit multiply (Horowitz, ISSCC 2014).
So one design costs different energy in layers whose operand histograms differ.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

import numpy as np

from .._record import Multiplier
from .liberty import CELLS
from .netlist import CONST1, GateNetlist

log = logging.getLogger(__name__)

#: 45 nm energy anchors (Horowitz, "Computing's energy problem", ISSCC 2014).
EXACT_MULTIPLY_PJ = 0.2  # 8-bit integer multiply
ACCUMULATE_PJ = 0.1  # 32-bit integer add (the MAC's accumulator)
DEFAULT_SAMPLES = 8192


class ActivityEnergy(NamedTuple):
    """Energy per multiplication of one design under one operand distribution."""

    energy: float  # capacitance-weighted transitions per multiplication (C_gate V^2 / 2 units)
    functional: float  # the same without glitches (zero-delay transitions only)
    relative: float  # energy / exact multiplier's energy (same signedness, uniform operands)
    pj: float  # relative * 0.2 pJ
    samples: int
    glitches: bool


def operand_stream(signed: bool, p: np.ndarray | None, q: np.ndarray | None, samples: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``samples + 1`` operand code pairs (uint8) drawn from histograms ``p`` (a) and ``q`` (b) in LUT order."""

    def draw(hist: np.ndarray | None) -> np.ndarray:
        if hist is None:
            index = rng.integers(0, 256, samples + 1)
        else:
            hist = np.asarray(hist, dtype=float)
            if hist.shape != (256,) or np.any(hist < 0) or hist.sum() <= 0:
                raise ValueError("an operand histogram needs 256 non-negative bins with a positive sum")
            index = rng.choice(256, samples + 1, p=hist / hist.sum())
        return (index ^ (0x80 if signed else 0)).astype(np.uint8)  # LUT index -> operand code

    return draw(p), draw(q)


def _pack(codes: np.ndarray) -> np.ndarray:
    """Bit planes of 8-bit codes: (8, len/8) packed uint8."""
    return np.packbits(np.unpackbits(codes[:, None], axis=1, bitorder="little").T, axis=1)


class _Simulator:
    """Synchronous unit-delay evaluation of a netlist on packed operand streams."""

    def __init__(self, netlist: GateNetlist) -> None:
        self.netlist = netlist
        self.groups = netlist.groups()
        self.weight = netlist.capacitance() + netlist.internal_capacitance()
        self.limit = netlist.depth + 2

    def initial(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        state = np.zeros((self.netlist.nets, a.shape[1]), dtype=np.uint8)
        state[CONST1] = 0xFF
        self.drive(state, a, b)
        return state

    def drive(self, state: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        state[list(self.netlist.a)] = a
        state[list(self.netlist.b)] = b

    def step(self, state: np.ndarray) -> np.ndarray:
        new = state.copy()
        for kind, ins, outs in self.groups:
            new[outs] = CELLS[kind].evaluate(*(state[ins[:, k]] for k in range(ins.shape[1])))
        return new

    def settle(self, state: np.ndarray, count: bool) -> tuple[np.ndarray, float]:
        """Iterate to the fixed point; with ``count``, the capacitance-weighted transitions on the way."""
        total = 0.0
        for _ in range(self.limit):
            new = self.step(state)
            diff = new ^ state
            if not diff.any():
                return state, total
            if count:
                total += float(self.weight @ np.bitwise_count(diff).sum(axis=1))
            state = new
        raise RuntimeError("netlist did not settle (combinational loop?)")


def netlist_table(netlist: GateNetlist, signed: bool) -> np.ndarray:
    """The netlist's outputs on all 65,536 operand pairs, as a LUT (int64 (256, 256), LUT order)."""
    codes = np.arange(256, dtype=np.uint8)
    sim = _Simulator(netlist)
    state, _ = sim.settle(sim.initial(_pack(np.repeat(codes, 256)), _pack(np.tile(codes, 256))), count=False)
    width = len(netlist.p)
    bits = np.stack([np.unpackbits(state[n]).astype(np.int64) for n in netlist.p])
    value = (bits << np.arange(width)[:, None]).sum(axis=0)
    if signed:
        value = np.where(value >> (width - 1), value - (1 << width), value)
    order = codes.astype(np.int64) ^ (128 if signed else 0)  # operand code -> LUT index
    table = np.empty((256, 256), dtype=np.int64)
    table[np.ix_(order, order)] = value.reshape(256, 256)
    return table


def switching_energy(netlist: GateNetlist, a_codes: np.ndarray, b_codes: np.ndarray,
                     glitches: bool = True) -> tuple[float, float]:
    """(unit-delay, zero-delay) capacitance-weighted transitions per operand pair of the stream."""
    samples = len(a_codes) - 1
    if samples % 8:
        raise ValueError("the stream must hold a multiple of 8 transitions")
    sim = _Simulator(netlist)
    pa, pb = _pack(a_codes[:-1]), _pack(b_codes[:-1])
    ca, cb = _pack(a_codes[1:]), _pack(b_codes[1:])
    before, _ = sim.settle(sim.initial(pa, pb), count=False)
    state = before.copy()
    sim.drive(state, ca, cb)
    inputs = float(sim.weight @ np.bitwise_count(state ^ before).sum(axis=1))  # operand bits themselves
    if glitches:
        after, transitions = sim.settle(state, count=True)
        transitions += inputs
    else:
        after, _ = sim.settle(state, count=False)
    functional = float(sim.weight @ np.bitwise_count(after ^ before).sum(axis=1))
    return (transitions if glitches else functional) / samples, functional / samples


def activity_energy(m: Multiplier, p: np.ndarray | None = None, q: np.ndarray | None = None,
                    samples: int = DEFAULT_SAMPLES, seed: int = 0, glitches: bool = True) -> ActivityEnergy:
    """Energy per multiplication of ``m`` with activations ~ ``p`` and weights ~ ``q`` (256-bin histograms, LUT order).

    Uses the shipped netlist of a built-in design, else synthesises it (cached; needs Yosys).
    """
    from .precomputed import netlist_of

    samples = -(-int(samples) // 8) * 8
    energy, functional = stream_energy(netlist_of(m), m.signed, p, q, samples, seed, glitches)
    reference = _reference_energy(m.signed, samples, seed, glitches)
    relative = energy / reference
    return ActivityEnergy(energy, functional, relative, relative * EXACT_MULTIPLY_PJ, samples, glitches)


@functools.lru_cache(maxsize=16)
def _reference_energy(signed: bool, samples: int, seed: int, glitches: bool) -> float:
    """Energy of the exact multiplier of that signedness under uniform operands."""
    from .precomputed import netlist_of, reference_design

    return stream_energy(netlist_of(reference_design(signed)), signed, None, None, samples, seed, glitches)[0]


def stream_energy(netlist: GateNetlist, signed: bool, p: np.ndarray | None, q: np.ndarray | None,
                  samples: int, seed: int, glitches: bool = True) -> tuple[float, float]:
    """(energy, zero-delay energy) per multiplication of a netlist on a stream drawn with ``seed``."""
    a, b = operand_stream(signed, p, q, samples, np.random.default_rng(seed))
    return switching_energy(netlist, a, b, glitches)


def layer_energy_pj(m: Multiplier, p: np.ndarray | None = None, q: np.ndarray | None = None,
                    samples: int = DEFAULT_SAMPLES, seed: int = 0) -> tuple[float, str]:
    """(multiplier energy in pJ per MAC, method) under activations ~ ``p`` and weights ~ ``q``.

    Activity-based on the synthesised netlist for structural designs (shipped for built-in ones,
    else synthesised and cached); imported designs scale their own (published) relative energy.
    """
    from .synthesis import SynthesisError
    from .tools import ToolNotFoundError
    from .verilog import is_structural

    if is_structural(m):
        try:
            return activity_energy(m, p, q, samples=samples, seed=seed).pj, "activity"
        except (ToolNotFoundError, SynthesisError) as error:  # a design without a shipped netlist
            log.warning("%s: no activity-based energy (%s); using its relative energy", m.name, error)
    try:
        cost = m.cost()
    except KeyError:
        raise ValueError(f"{m.name} has no cost estimate: give its energy per MAC explicitly") from None
    return EXACT_MULTIPLY_PJ * cost.energy, cost.method
