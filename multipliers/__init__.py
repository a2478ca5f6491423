"""The multiplier zoo: 8-bit approximate multipliers with bit-exact LUTs, error statistics and cost.

Importing this package is cheap (numpy only); the built-in designs are generated on first use.
"""

from ._record import CircuitSource, HardwareCost, InvalidDesignError, Multiplier, exact_lut, operand_values
from .importing import ImportDesignError, import_designs
from .stats import ErrorStatistics, error_statistics
from .zoo import UnknownMultiplierError, Zoo, builtin_designs, get

__all__ = [
    "CircuitSource",
    "ErrorStatistics",
    "HardwareCost",
    "ImportDesignError",
    "InvalidDesignError",
    "Multiplier",
    "UnknownMultiplierError",
    "Zoo",
    "builtin_designs",
    "error_statistics",
    "exact_lut",
    "get",
    "import_designs",
    "operand_values",
]
