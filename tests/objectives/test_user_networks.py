"""Users' own networks and data sets: ``path/to/file.py:function`` and ``package.module:function``."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch

from dse.cli import main

MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, 10)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1))


    def build():
        torch.manual_seed(0)
        return Two()


    build.input_size = (1, 8, 8)


    def sized():
        model = Two()
        model.input_size = (1, 8, 8)
        return model


    def unsized():
        return Two()


    def broken():
        raise RuntimeError("boom")


    def not_a_module():
        return 3


    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)
            self.mix = nn.Parameter(torch.eye(64))

        def forward(self, x):
            return self.fc(torch.einsum("nk,kj->nj", x.flatten(1), self.mix))


    def custom():
        return Custom()


    custom.input_size = (1, 8, 8)


    class Nothing(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10] * 2


    def nothing():
        return Nothing()


    nothing.input_size = (1, 8, 8)


    def digits_test():
        from objectives.data import digits_arrays
        from torch.utils.data import TensorDataset

        _, _, x, y = digits_arrays()
        data = TensorDataset(x, y)
        data.targets = y.tolist()
        return data
''')


@pytest.fixture()
def user_files(tmp_path, monkeypatch):
    """some/dir/mynet.py and a package ``usernets`` in the current folder."""
    folder = tmp_path / "some" / "dir"
    folder.mkdir(parents=True)
    (folder / "mynet.py").write_text(MODULE)
    package = tmp_path / "usernets"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("usernets")]:
        del sys.modules[name]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_layers_of_a_model_in_a_file_and_in_a_package(user_files, capsys):
    for spec in ("some/dir/mynet.py:build", "usernets.models:build", "some/dir/mynet.py:sized"):
        code, out, _ = run(capsys, "layers", spec, "--json")
        assert code == 0, spec
        rows = json.loads(out)
        assert [(r["name"], r["kind"]) for r in rows] == [("conv", "conv"), ("fc", "linear")]
        assert rows[0]["macs"] == 64 * 9 * 4 and rows[1]["macs"] == 256 * 10


def test_an_unknown_multiplying_op_is_named_in_a_warning(user_files, capsys, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="objectives.gemms"):
        code, out, _ = run(capsys, "layers", "some/dir/mynet.py:custom")
    assert code == 0 and "fc" in out
    assert "the model (Custom) calls torch.einsum: not approximated (stays float)" in caplog.text


@pytest.mark.parametrize("spec, message", [
    ("some/dir/missing.py:build", "file .*missing.py does not exist"),
    ("some/dir/mynet.py:nope", "has no 'nope'; it defines .*build"),
    ("some/dir/mynet.py:broken", "the factory raised RuntimeError: boom"),
    ("some/dir/mynet.py:not_a_module", "the factory returned int, not a torch.nn.Module"),
    ("some/dir/mynet.py:unsized", "the input size is unknown; set network.input_size"),
    ("some/dir/mynet.py:nothing", "has no layer the tool can approximate"),
    ("no_such_package.models:build", "no module named 'no_such_package'"),
])
def test_bad_factories_are_one_line(user_files, capsys, spec, message):
    import re

    code, out, err = run(capsys, "layers", spec)
    assert code == 2 and out == ""
    assert err.startswith("dse: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err


def test_weights_that_do_not_fit_name_the_first_keys(user_files, capsys):
    torch.save({"conv.weight": torch.zeros(4, 1, 3, 3), "other.bias": torch.zeros(3)}, user_files / "w.pt")
    code, _, err = run(capsys, "eval", "--network", "some/dir/mynet.py:build", "--weights", user_files / "w.pt",
                       "--data", "usernets.models:digits_test", "--float")
    assert code == 2 and "weights do not fit" in err and "conv.bias" in err and "other.bias" in err


def test_eval_with_weights_and_a_data_set_factory(user_files, capsys):
    from objectives.networks.user import load_factory

    torch.save(load_factory("usernets.models:build")().state_dict(), user_files / "w.pt")
    code, out, _ = run(capsys, "eval", "--network", "usernets.models:build", "--weights", user_files / "w.pt",
                       "--data", "usernets.models:digits_test", "--multiplier", "mitchell_s_w7", "--limit", "100",
                       "--json")
    assert code == 0 and json.loads(out)["images"] == 100
    code, _, err = run(capsys, "eval", "--network", "usernets.models:build", "--data", "usernets.models:broken")
    assert code == 2 and "data set 'usernets.models:broken': the factory raised RuntimeError: boom" in err


def test_options_come_before_the_factory_attributes(user_files):
    from objectives.networks import get_network

    network = get_network("some/dir/mynet.py:unsized", options={"input_size": (1, 8, 8), "mean": (0.5,), "std": (0.25,)})
    assert network.input_shape == (1, 8, 8) and network.num_classes == 10 and network.dataset == "custom"
    assert "Normalize(mean=(0.5,), std=(0.25,))" in repr(network.transform)
    assert get_network("some/dir/mynet.py:build", pretrained=False).input_shape == (1, 8, 8)
