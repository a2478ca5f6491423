"""The study file schema: one frozen dataclass per TOML table, its fields the keys with their defaults.

The dataclasses *are* the schema (ZigZag validates against a schema with defaults, then builds typed
objects; here both are one thing): :mod:`dse.study.config` reads each table's field names, type
hints, defaults and ``metadata`` (``help``, ``choices``, ``minimum``, ``maximum``, ``path``) to reject unknown
keys and wrong types and to fill in defaults; :func:`reference` renders the same fields as the
study file reference. Paths are resolved against the study file's folder (``${VAR}`` expands an
environment variable; ``${DSE_SHARED_DATA}`` defaults to ``../shared/data`` beside the repository).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

#: Compensation modes; ``searched`` lets the search choose one per layer.
COMPENSATIONS = ("none", "bias", "affine", "searched")
SCHEMES = ("int8", "uint8")
ENGINES = ("optuna", "pymoo")
#: Energy per product: the zoo's cost (``table``), or switching activity of the synthesised netlist
#: under each layer's operand histograms (``activity``); ``system`` charges products like ``table`` and reports
#: the whole accelerator's energy through ZigZag (``accelerator``) beside it.
ENERGY_MODELS = ("table", "activity", "system")


def key(default: Any = MISSING, help: str = "", **meta: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A study file key: its default (none: required) and metadata for validation and the reference."""
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple or None for container defaults")
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class StudySection:
    """[study]: what the study is called."""

    name: str = key("", "study name (default: the study file's name)")
    description: str = key("", "free text shown in reports")


@dataclass(frozen=True)
class NetworkSection:
    """[network]: the trained network to approximate."""

    name: str = key(help="network: digits-cnn, digits-vit, resnet20-cifar10 .. resnet110-cifar10, torchvision:<name>, "
                    "or your own: path/to/file.py:function or package.module:function returning an nn.Module (a file "
                    "path relative to the study file's folder)")
    weights: str = key("", "state-dict file (or a torchvision weights name such as DEFAULT)", path="weights")
    layers: tuple[str, ...] = key((), "only these layers are approximated (default: every GEMM layer: conv, linear, "
                                      "matmul)")
    exact: tuple[str, ...] = key((), "layers kept exact (for example the first convolution)")
    input_size: tuple[int, ...] = key((), "your own network: [C, H, W] of one input image (default: the factory's or "
                                          "the module's input_size attribute)")
    mean: tuple[float, ...] = key((), "your own network: per-channel mean subtracted after ToTensor (default: the "
                                      "factory's or the module's mean attribute, else none)")
    std: tuple[float, ...] = key((), "your own network: per-channel standard deviation divided by (default: the "
                                     "factory's or the module's std attribute, else none)")

    def options(self) -> dict[str, tuple]:
        """The keys describing a user network's input, for ``objectives.networks.get_network(options=...)``."""
        return {k: v for k, v in (("input_size", self.input_size), ("mean", self.mean), ("std", self.std)) if v}


@dataclass(frozen=True)
class DataSection:
    """[data]: test and calibration images."""

    test: str = key("", "ImageFolder of test images (not needed for digits-cnn and digits-vit), or a data set factory "
                    "package.module:function / path/to/file.py:function returning a torch data set of (image, label)",
                    path="data")
    calibration: str = key("", "ImageFolder of calibration images (default: a balanced slice of the test set)", path="dir")
    calibration_images: int = key(256, "calibration images (quantisation ranges, histograms, surrogate)", minimum=1)
    download: bool = key(False, "download CIFAR-10 through torchvision when no test folder is given")
    batch_size: int = key(128, "inference batch size", minimum=1)


@dataclass(frozen=True)
class QuantizationSection:
    """[quantization]: the integer scheme (int8 needs signed multipliers, uint8 unsigned)."""

    scheme: str = key("int8", "int8 (symmetric, signed designs) or uint8 (asymmetric, unsigned designs)", choices=SCHEMES)


@dataclass(frozen=True)
class CompensationSection:
    """[compensation]: free error compensation in each layer's bias and requantisation scale."""

    mode: str = key(
        "none", "none, bias or affine in every layer, or searched: each layer the one the surrogate predicts best for "
        "its design",
        choices=COMPENSATIONS,
    )
    tune_weights: bool = key(
        False, "store each approximate layer's weights tuned to its design: every weight w replaced by the operand "
        "whose approximate products are closest to w's exact ones under the layer's activations (ALWANN; free in "
        "hardware, no retraining)",
    )


@dataclass(frozen=True)
class MultipliersSection:
    """[multipliers]: the zoo subset the search may assign (the exact design is always included)."""

    families: tuple[str, ...] = key((), "only these families (default: all)")
    names: tuple[str, ...] = key((), "only these designs")
    imports: tuple[str, ...] = key(
        (), "LUT folders, metadata files or Verilog circuits (.v files or folders of them) to import first", path="any")
    exclude: tuple[str, ...] = key((), "designs never assigned")
    cost_method: str = key(
        "", "cost estimate to use: synthesised (imported circuits), published, synthesis (built-in designs), "
        "unit-gate (default: each design's most trusted)")


@dataclass(frozen=True)
class ObjectivesSection:
    """[objectives]: minimised multiplier energy and accuracy drop, optionally area."""

    area: bool = key(False, "third objective: summed relative area of the distinct multipliers used")
    energy: str = key(
        "table", "energy per product: table (the zoo's cost, see multipliers.cost_method), activity (switching "
        "activity of the synthesised netlist under each layer's calibration operands; designs without a netlist "
        "keep their table cost, relative to exact in the same layer) or system (as table, and the whole "
        "accelerator's energy through ZigZag: see accelerator)", choices=ENERGY_MODELS,
    )
    accelerator: str = key(
        "", "for energy = system: a ZigZag accelerator template (edge_tpu_like, eyeriss_like, tesla_npu_like, "
        "tpu_like ...) or the path of a ZigZag hardware YAML file", path="accelerator",
    )
    mapping: str = key("", "for energy = system: a ZigZag mapping YAML file (default: the template's, else ZigZag's "
                       "default mapping)", path="any")
    activity_samples: int = key(8192, "operand pairs simulated per layer and design for energy = activity", minimum=8)
    multiply_pj: float = key(0.2, "energy of an exact 8-bit multiply, pJ (Horowitz 2014, 45 nm)", minimum=0.0)
    accumulate_pj: float = key(0.1, "energy of a 32-bit accumulator add, pJ (Horowitz 2014, 45 nm)", minimum=0.0)


@dataclass(frozen=True)
class ConstraintsSection:
    """[constraints]: limits a reported point must meet."""

    max_drop: float = key(2.0, "largest top-1 drop (points, measured) of a point on the reported front", minimum=0.0)


@dataclass(frozen=True)
class SearchSection:
    """[search]: the engine exploring assignments on the surrogate."""

    engine: str = key("optuna", "optuna or pymoo", choices=ENGINES)
    sampler: str = key("NSGAIISampler", "optuna sampler class on optuna.samplers (NSGAIISampler, TPESampler ...)")
    algorithm: str = key("NSGA2", "pymoo algorithm (NSGA2)")
    options: dict = key(None, "keyword arguments for the sampler or algorithm")
    budget: int = key(3000, "surrogate evaluations (trials)", minimum=1)
    population: int = key(60, "population size (NSGA-II)", minimum=4)
    seed: int = key(0, "seed of all randomness", minimum=0, maximum=2**32 - 1)


@dataclass(frozen=True)
class SurrogateSection:
    """[surrogate]: the distortion surrogate and the real inferences that calibrate it."""

    calibration_points: int = key(
        4, "real inferences along the surrogate's greedy path that first fit its score-to-drop map", minimum=2
    )
    response_designs: int = key(
        9, "real designs run alone in each layer, on the calibration images, to measure how its errors reach the "
        "logits (0: the linearised sensitivities alone); each costs one pass per layer and compensation", minimum=0
    )


@dataclass(frozen=True)
class ConfirmationSection:
    """[confirmation]: real, error-injected inference of the surrogate's front."""

    candidates: int = key(12, "most front points confirmed with real inference (in rounds, refitting the map)", minimum=1)
    images: int = key(0, "test images per confirmation (0: all)", minimum=0)
    jobs: int = key(2, "parallel confirmation processes (-1: all cores)", minimum=-1)
    report_drops: tuple[float, ...] = key((0.5, 1.0), "drop levels (points) at which the summary reports the saving")
    held_out: bool = key(
        True, "re-measure the confirmed front and the exact network on the test images the confirmation did not "
        "use (the confirmation images both pick the front's points and measure them)"
    )


@dataclass(frozen=True)
class GroupingSection:
    """[grouping]: layers sharing multipliers (accelerators with fewer PE types than layers)."""

    max_distinct: int = key(0, "at most this many distinct multipliers over all layers (0: no limit)", minimum=0)
    groups: tuple[tuple[str, ...], ...] = key((), "lists of layer names that share one multiplier")


@dataclass(frozen=True)
class StorageSection:
    """[storage]: where the search and confirmations are stored (the study's whole state)."""

    url: str = key("", "database URL (sqlite:///..., postgresql://...); default: study.db in the study folder")
    journal: str = key("", "optuna journal file for many workers (relative: inside the study folder)")


@dataclass(frozen=True)
class RunSection:
    """[run]: where this run's inference runs (no key here changes a result)."""

    device: str = key(
        "auto", "cpu, cuda, cuda:N or auto (CUDA when present, else cpu); inference is bit-exact, so every device "
        "gives the same results; on a CUDA device the confirmation measures in this one process, whatever "
        "confirmation.jobs says",
    )
    threads: int = key(
        0, "CPU threads of torch's operations in the dse run process (0: torch's default, one per core); a small "
        "network such as digits-vit runs several times faster on one (its tensors are too small to share out, "
        "and a busy machine makes every shared operation wait)", minimum=0,
    )


#: Table name -> its dataclass, in file order.
SECTIONS: dict[str, type] = {
    "study": StudySection,
    "network": NetworkSection,
    "data": DataSection,
    "quantization": QuantizationSection,
    "compensation": CompensationSection,
    "multipliers": MultipliersSection,
    "objectives": ObjectivesSection,
    "constraints": ConstraintsSection,
    "search": SearchSection,
    "surrogate": SurrogateSection,
    "confirmation": ConfirmationSection,
    "grouping": GroupingSection,
    "storage": StorageSection,
    "run": RunSection,
}

#: Keys that may change between runs of one study directory (they do not change finished results).
RESUMABLE = frozenset(
    {
        "study.description", "search.budget", "confirmation.candidates", "confirmation.jobs",
        "confirmation.report_drops", "confirmation.held_out", "data.batch_size", "storage.url", "storage.journal",
        "run.device", "run.threads", "objectives.accelerator", "objectives.mapping",
    }
)


def reference() -> str:
    """The study file reference as Markdown: every table, key, type, default and meaning."""
    lines = []
    for table, cls in SECTIONS.items():
        meaning = (cls.__doc__ or "").split(": ", 1)[-1]
        lines.append(f"### [{table}]\n\n{meaning[:1].upper()}{meaning[1:]}\n")
        lines.append("| key | type | default | meaning |\n| --- | --- | --- | --- |")
        for f in fields(cls):
            default = "required" if f.default is MISSING else _show(f.default)
            kind = _TYPE_NAMES.get(str(f.type), str(f.type))
            lines.append(f"| `{f.name}` | {kind} | {default} | {f.metadata.get('help', '')} |")
        lines.append("")
    return "\n".join(lines)


_TYPE_NAMES = {
    "str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "table",
    "tuple[str, ...]": "list of strings", "tuple[float, ...]": "list of numbers", "tuple[int, ...]": "list of integers",
    "tuple[tuple[str, ...], ...]": "list of lists of strings",
}


def _show(value: Any) -> str:
    if value is None:
        return "{}"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(_show(v).strip("`") for v in value) + "]`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"
