"""Whole-accelerator energy of a network's GEMM layers through ZigZag (KU Leuven's DNN accelerator DSE framework).

Each conv, linear or matmul layer becomes one ZigZag workload layer with 8-bit activations and weights
(16-bit partial sums, ZigZag's own default for 8-bit operands): a convolution keeps its kernel, stride,
padding and groups (``O[b][g][k][oy][ox] += W[g][k][c][fy][fx] * I[b][g][c][iy][ix]``), so ZigZag sees the
input reuse across overlapping windows; a linear layer or a product of activations is a GEMM
(``O[h][d][k] += I[h][d][c] * W[h][c][k]``). ZigZag searches the layer's spatial and temporal mappings on
the accelerator (LOMA, the lowest-energy mapping) and reports its energy per inference (one image) split
into the MAC array's (``mac_pj``: MACs x the array's unit energy) and each memory level's (reads and
writes of every operand it holds, summed over operands).

The accelerator is one of ZigZag's shipped templates (``edge_tpu_like``, ``eyeriss_like``,
``tesla_npu_like``, ``tpu_like`` ... with its shipped mapping, else ZigZag's default mapping) or the user's
accelerator YAML with an optional mapping YAML. Both are validated by ZigZag's own validators before any
work (:func:`check_accelerator`); every problem is an :class:`~objectives.errors.ObjectiveInputError` that
names the file. ZigZag is an optional dependency (``pip install 'axm-dse[system]'``), imported only here.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple

from .errors import ObjectiveInputError

log = logging.getLogger(__name__)

#: Bumped whenever the workload layers or the search settings change results.
WORKLOAD_VERSION = 1
PRECISION = {"I": 8, "W": 8, "O": 16, "O_final": 8}
#: LOMA's limit on loop prime factors (ZigZag's default) and the spatial mappings tried per layer.
LPF_LIMIT = 6
SPATIAL_MAPPINGS = 3
INSTALL_HINT = "pip install 'axm-dse[system]' (zigzag-dse, Python 3.11 or later)"


class LayerSystemEnergy(NamedTuple):
    """ZigZag's energy of one layer per inference (pJ): the MAC array's and each memory level's."""

    layer: str
    macs: int
    mac_pj: float
    memory_pj: dict[str, float]  # memory level -> pJ, summed over the operands it holds
    operand_memory_pj: dict[str, dict[str, float]]  # operand (I, W, O) -> memory level -> pJ
    latency_cycles: float

    @property
    def total_pj(self) -> float:
        """MAC array plus memories."""
        return self.mac_pj + sum(self.memory_pj.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return self._asdict()


@dataclass(frozen=True)
class Accelerator:
    """An accelerator to evaluate on: its ZigZag hardware YAML and mapping YAML."""

    name: str  # the template's name, or the hardware file's stem
    hardware: Path
    mapping: Path
    template: bool

    def digest(self) -> str:
        """SHA-256 of what ZigZag's results depend on: both files, ZigZag's version, the workload format."""
        h = hashlib.sha256(f"{WORKLOAD_VERSION};{zigzag_version()};{LPF_LIMIT};{SPATIAL_MAPPINGS}".encode())
        for path in (self.hardware, self.mapping):
            h.update(b"\0")
            h.update(path.read_bytes())
        return h.hexdigest()

    def describe(self) -> str:
        """``edge_tpu_like (ZigZag template)`` or ``my_accel (/path/to/my_accel.yaml)``."""
        return f"{self.name} (ZigZag template)" if self.template else f"{self.name} ({self.hardware})"


def zigzag_version() -> str:
    """The installed zigzag-dse version, or a one-line error saying how to install it."""
    try:
        return importlib.metadata.version("zigzag-dse")
    except importlib.metadata.PackageNotFoundError:
        raise ObjectiveInputError(f"whole-accelerator energy needs ZigZag: {INSTALL_HINT}") from None


def _inputs() -> Path:
    zigzag_version()
    import importlib.resources

    return Path(str(importlib.resources.files("zigzag") / "inputs"))


def templates() -> list[str]:
    """Names of ZigZag's shipped accelerator templates."""
    return sorted(p.stem for p in (_inputs() / "hardware").glob("*.yaml"))


def resolve_accelerator(accelerator: str, mapping: str = "") -> Accelerator:
    """A template name or a hardware YAML path (and an optional mapping YAML path) as an :class:`Accelerator`."""
    if not accelerator:
        raise ObjectiveInputError("whole-accelerator energy needs an accelerator: a ZigZag template "
                                  "(edge_tpu_like, eyeriss_like, tesla_npu_like ...) or a ZigZag hardware YAML file")
    is_file = accelerator.endswith((".yaml", ".yml")) or "/" in accelerator
    if is_file:
        hardware = Path(accelerator)
        if not hardware.is_file():
            raise ObjectiveInputError(f"{hardware}: no such ZigZag accelerator file")
        name, template = hardware.stem, False
    else:
        hardware = _inputs() / "hardware" / f"{accelerator}.yaml"
        if not hardware.is_file():
            raise ObjectiveInputError(f"{accelerator}: not a ZigZag accelerator template; templates: "
                                      f"{', '.join(templates())} (or give the path of a ZigZag hardware YAML file)")
        name, template = accelerator, True
    if mapping:
        mapping_path = Path(mapping)
        if not mapping_path.is_file():
            raise ObjectiveInputError(f"{mapping_path}: no such ZigZag mapping file")
    else:
        shipped = _inputs() / "mapping"
        options = [shipped / f"{name}.yaml", shipped / f"{name}_like.yaml"] if template else []
        mapping_path = next((p for p in options if p.is_file()), shipped / "default.yaml")
    return Accelerator(name, hardware.resolve(), mapping_path.resolve(), template)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ZigZag logs every mapping step at INFO and its adjustments as warnings: keep them at debug level here."""
    logger = logging.getLogger("zigzag")
    level = logger.level
    logger.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _parse(accelerator: Accelerator) -> tuple[Any, list[dict[str, Any]]]:
    """ZigZag's accelerator object and normalised mapping data, validated by ZigZag; one-line errors name the file."""
    from zigzag.parser.accelerator_factory import AcceleratorFactory
    from zigzag.parser.accelerator_validator import AcceleratorValidator
    from zigzag.parser.mapping_validator import MappingValidator
    from zigzag.utils import open_yaml

    with _quiet():
        data = _yaml(accelerator.hardware, open_yaml)
        try:
            validator = AcceleratorValidator(data)
            _validate(validator, accelerator.hardware, "accelerator")
            hardware = AcceleratorFactory(validator.normalized_data).create()
        except ObjectiveInputError:
            raise
        except Exception as error:  # noqa: BLE001 - ZigZag raises many kinds on a bad description
            raise ObjectiveInputError(f"{accelerator.hardware}: ZigZag rejects this accelerator: {_what(error)}") from None
        data = _yaml(accelerator.mapping, open_yaml)
        try:
            mapping = MappingValidator(data)
            _validate(mapping, accelerator.mapping, "mapping")
        except ObjectiveInputError:
            raise
        except Exception as error:  # noqa: BLE001
            raise ObjectiveInputError(f"{accelerator.mapping}: ZigZag rejects this mapping: {_what(error)}") from None
    return hardware, mapping.normalized_data


def _validate(validator: Any, path: Path, what: str) -> None:
    """Run a ZigZag validator; its schema errors (also when its later checks crash on them) as one line."""
    try:
        valid = validator.validate()
    except Exception as error:  # noqa: BLE001 - its extra checks index fields the schema found missing
        errors = getattr(getattr(validator, "validator", None), "errors", None)
        raise ObjectiveInputError(f"{path}: ZigZag rejects this {what}: {_errors(errors) if errors else _what(error)}"
                                  ) from None
    if not valid:
        raise ObjectiveInputError(f"{path}: ZigZag rejects this {what}: {_errors(validator.validator.errors)}")


def _what(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


def _yaml(path: Path, open_yaml: Any) -> Any:
    try:
        data = open_yaml(str(path))
    except Exception as error:  # noqa: BLE001 - yaml errors, OSError
        raise ObjectiveInputError(f"{path}: not a YAML file ZigZag can read: {str(error).splitlines()[0]}") from None
    if not data:
        raise ObjectiveInputError(f"{path}: empty YAML file")
    return data


def _errors(errors: Any, shown: int = 4) -> str:
    """A validator's nested errors as ``memories.dram.read_cost: unknown field; ...`` (the first few)."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            found.append(f"{path}: {node}" if path else str(node))

    walk(errors, "")
    text = "; ".join(found[:shown]) + (f"; and {len(found) - shown} more" if len(found) > shown else "")
    return " ".join(text.split())


def check_accelerator(accelerator: Accelerator) -> None:
    """Validate the hardware and mapping YAML with ZigZag's validators (an ObjectiveInputError naming the file)."""
    _parse(accelerator)


def workload_layer(record: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """A layer record (:meth:`objectives.layers.LayerInfo.as_dict`) as a ZigZag workload layer, 8-bit operands."""
    kind = record.get("kind", "")
    layer: dict[str, Any] = {"id": index, "name": record["name"], "operand_precision": dict(PRECISION)}
    if kind == "conv":
        groups = int(record.get("groups", 1))
        (kh, kw), (sh, sw) = record["kernel_size"], record["stride"]
        (ih, iw), (oh, ow) = record["input_hw"], record["output_hw"]
        pad_h, pad_w = max(0, (oh - 1) * sh + kh - ih), max(0, (ow - 1) * sw + kw - iw)
        g = "[g]" if groups > 1 else ""
        layer.update(
            operator_type="Conv",
            equation=f"O[b]{g}[k][oy][ox]+=W{g}[k][c][fy][fx]*I[b]{g}[c][iy][ix]",
            dimension_relations=[f"ix={sw}*ox+1*fx", f"iy={sh}*oy+1*fy"],
            loop_dims=["B", *(["G"] if groups > 1 else []), "K", "C", "OY", "OX", "FY", "FX"],
            loop_sizes=[1, *([groups] if groups > 1 else []), record["out_channels"] // groups,
                        record["in_channels"] // groups, oh, ow, kh, kw],
            pr_loop_dims=["IX", "IY"], pr_loop_sizes=[iw + pad_w, ih + pad_h],
            padding=[[pad_w // 2, pad_w - pad_w // 2], [pad_h // 2, pad_h - pad_h // 2]],
        )
    else:  # linear (rows of its input per image), or a product of activations (heads x rows)
        heads = int(record.get("heads", 1))
        h = "[h]" if heads > 1 else ""
        layer.update(
            operator_type="Gemm",
            equation=f"O{h}[d][k]+=I{h}[d][c]*W{h}[c][k]",
            dimension_relations=[],
            loop_dims=[*(["H"] if heads > 1 else []), "D", "C", "K"],
            loop_sizes=[*([heads] if heads > 1 else []), max(1, int(record["m"]) // heads), record["k"], record["n"]],
        )
    return layer


def layer_energy(accelerator: Accelerator, record: Mapping[str, Any], index: int = 0) -> LayerSystemEnergy:
    """ZigZag's lowest-energy mapping of one layer on the accelerator, as energy per inference."""
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.parser.workload_factory import LayerNodeFactory
    from zigzag.parser.workload_validator import WorkloadValidator
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.results.reduce_stages import MinimalEnergyStage

    hardware, mapping = _parse(accelerator)
    name = record["name"]
    with _quiet():
        validator = WorkloadValidator([workload_layer(record, index)])
        if not validator.validate():
            raise ObjectiveInputError(f"layer {name}: ZigZag rejects its workload: {_errors(validator.validator.errors)}")
        layer = LayerNodeFactory(validator.normalized_data[0], mapping).create()
        stages = [MinimalEnergyStage, SpatialMappingGeneratorStage, MinimalEnergyStage, TemporalMappingGeneratorStage,
                  CostModelStage]
        try:
            (cme, _), *_ = MainStage(
                stages, layer=layer, accelerator=hardware, loma_lpf_limit=LPF_LIMIT, loma_show_progress_bar=False,
                nb_mappings_generated=SPATIAL_MAPPINGS, temporal_mapping_type=TemporalMappingType.UNEVEN,
                access_same_data_considered_as_no_access=True,
            ).run()
        except Exception as error:  # noqa: BLE001 - ZigZag's mapping errors have many types
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ObjectiveInputError(f"{accelerator.hardware}: ZigZag finds no mapping of layer {name} on "
                                      f"{accelerator.name}: {first}") from None
    per_level: dict[str, float] = {}
    per_operand: dict[str, dict[str, float]] = {}
    for operand, energies in cme.mem_energy_breakdown.items():
        levels = hardware.memory_hierarchy.get_memory_levels(mem_op=cme.memory_operand_links.layer_to_mem_op(operand))
        per_operand[str(operand)] = {level.name: float(e) for level, e in zip(levels, energies)}
        for level, e in zip(levels, energies):
            per_level[level.name] = per_level.get(level.name, 0.0) + float(e)
    macs = int(record["m"]) * int(record["k"]) * int(record["n"])
    if int(layer.total_mac_count) != macs:
        raise ObjectiveInputError(f"layer {name}: ZigZag's workload has {layer.total_mac_count} MACs, the layer {macs}")
    return LayerSystemEnergy(name, macs, float(cme.mac_energy), per_level, per_operand, float(cme.latency_total2))


__all__ = [
    "Accelerator",
    "LayerSystemEnergy",
    "check_accelerator",
    "layer_energy",
    "resolve_accelerator",
    "templates",
    "workload_layer",
    "zigzag_version",
]
