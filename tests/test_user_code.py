"""Loading a user's code (lossbench.user_code): every way a file can misbehave when imported or
bound is one ConfigError naming the key."""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import pytest

from lossbench import user_code
from lossbench.errors import ConfigError
from lossbench.user_code import instantiate, is_loss, load_target, parameters

GOOD = "from keras import ops\ndef f(y_true, y_pred):\n    return ops.mean(y_pred, axis=-1)\n"


def _load(tmp_path: Path, source: str, name: str = "f") -> object:
    path = tmp_path / f"user_{abs(hash(source))}.py"
    path.write_text(source)
    return load_target(f"{path.name}:{name}", "loss.target", base=tmp_path)


@pytest.mark.parametrize(
    ("source", "says"),
    [("import sys\nsys.exit(0)\n", "sys.exit(0)"),
     ("raise SystemExit('bye')\n", "sys.exit('bye')"),
     ("import os\nos.getcwd(\n", "SyntaxError"),
     ("import no_such_module_here\n", "ModuleNotFoundError"),
     ("x = 1 / 0\n", "ZeroDivisionError"),
     (GOOD.replace("def f", "def g"), "a name defined in"),
     ("f = 3\n", "(int)"),
     ("def f(y_true):\n    return y_true\n", "(function)")],
)  # fmt: skip
def test_a_file_that_fails_exits_or_lacks_the_loss_is_one_error_naming_the_key(
    tmp_path, source, says
):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, source)
    assert caught.value.key == "loss.target" and says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_that_hangs_when_imported_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(user_code, "IMPORT_SECONDS", 0.5)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"still importing after 0\.5 s") as caught:
        _load(tmp_path, "while True:\n    pass\n")
    assert caught.value.key == "loss.target" and time.monotonic() - start < 10
    with pytest.raises(ConfigError, match="still importing"):
        _load(tmp_path, "import time\ntime.sleep(60)\n")
    assert _load(tmp_path, GOOD) is not None  # the timer is off again


def test_a_file_that_prints_when_imported_still_loads(tmp_path, capsys):
    assert callable(_load(tmp_path, "print('hello', end='')\n" + GOOD))
    assert capsys.readouterr().out == "hello"


def _f_kw_only(y_true, y_pred, *, gamma): ...
def _f_kw_default(y_true, y_pred, *, gamma=2.0, beta=1): ...
def _f_positional(y_true, y_pred, gamma): ...
def _f_varargs(*args, **kwargs): ...
def _f_one(y_true): ...


@pytest.mark.parametrize(
    ("fn", "loss", "params"),
    [(_f_kw_only, True, {"gamma": inspect.Parameter.empty}),
     (_f_kw_default, True, {"gamma": 2.0, "beta": 1}),
     (_f_positional, True, {"gamma": inspect.Parameter.empty}),
     (_f_varargs, True, {}), (_f_one, False, None)],
)  # fmt: skip
def test_parameters_in_every_form_are_the_losss_parameters(fn, loss, params):
    assert is_loss(fn) is loss
    if loss:
        assert parameters(fn) == params


@pytest.mark.parametrize("fn", [_f_kw_only, _f_positional])
def test_a_parameter_without_default_must_be_given(fn):
    with pytest.raises(ConfigError) as caught:
        instantiate(fn, {}, "loss.params")
    assert caught.value.key == "loss.params.gamma" and "no default" in str(caught.value)
    bound = instantiate(fn, {"gamma": 3.0}, "loss.params")
    assert bound.keywords == {"gamma": 3.0}
