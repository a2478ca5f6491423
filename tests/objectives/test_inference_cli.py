"""``dse eval`` and ``dse layers`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dse.cli import main


def test_eval_json_on_digits(capsys):
    assert main(["eval", "--network", "digits-cnn", "--json", "--limit", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"top1", "top5", "images", "seconds"}
    assert result["images"] == 100 and result["top1"] > 90


def test_eval_with_a_multiplier_and_compensation(capsys):
    assert main(["eval", "--network", "digits-cnn", "--scheme", "uint8", "--multiplier", "drum_u_k4",
                 "--compensate", "bias", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert "uint8, drum_u_k4, bias compensation" in out and "top-1" in out


def test_eval_offers_every_compensation_mode_of_the_engine(capsys):
    from dse.commands.inference import COMPENSATIONS
    from objectives.compensation import MODES

    assert COMPENSATIONS == MODES
    assert main(["eval", "--network", "digits-cnn", "--multiplier", "mitchell_s_w7",
                 "--compensate", "threshold", "--limit", "50"]) == 0
    assert "mitchell_s_w7, threshold compensation" in capsys.readouterr().out


def test_eval_mistakes_are_one_line(capsys, tmp_path):
    assert main(["eval", "--network", "digits-cnn", "--multiplier", "nope_s"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dse: error: unknown multiplier 'nope_s'") and "Traceback" not in err
    assert main(["eval", "--network", "resnet20-cifar10", "--data", str(tmp_path)]) == 2
    assert "needs --weights" in capsys.readouterr().err
    assignment = tmp_path / "a.json"
    assignment.write_text('{"conv7": "exact_s"}')
    assert main(["eval", "--network", "digits-cnn", "--assign", str(assignment)]) == 2
    assert "unknown layer 'conv7'" in capsys.readouterr().err


def test_layers_lists_gemm_dims(capsys):
    assert main(["layers", "digits-cnn"]) == 0
    out = capsys.readouterr().out
    assert "conv2" in out and "144" in out and "599,680 MACs per image" in out
    assert main(["layers", "digits-cnn", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["conv1", "conv2", "conv3", "fc"]
    assert rows[1]["macs"] == 64 * 144 * 32


def test_cli_start_up_does_not_import_torch():
    code = "import sys; from dse.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_layers_of_a_torchvision_model_need_no_weights(capsys):
    assert main(["layers", "torchvision:resnet18"]) == 0
    out = capsys.readouterr().out
    assert "layer4.1.conv2" in out and "21 layers" in out


@pytest.mark.parametrize("flags", [["--compensate", "bias"], ["--tune-weights"]])
def test_float_with_compensation_or_weight_tuning_is_refused(capsys, flags):
    assert main(["eval", "--network", "digits-cnn", "--float", *flags]) == 2
    assert "--compensate and --tune-weights apply to quantised networks" in capsys.readouterr().err
