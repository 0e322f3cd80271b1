"""The core install is enough for metrics, losses and training; a missing extra is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import graceful
from graceful._extras import EXTRAS, require
from graceful.errors import InputError, MissingExtraError

OPTIONAL = sorted({module.split(".")[0] for modules in EXTRAS.values() for module in modules})

# The folders and metadata of the optional packages, by name prefix.
HIDDEN = ("faiss", "pyarrow", "jinja2", "matplotlib", "typer", "sklearn", "scikit_learn", "mlflow")


@pytest.fixture(scope="module")
def bare_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A view of site-packages without the optional packages: as if they were not installed."""
    site = Path(sysconfig.get_paths()["purelib"])
    view = tmp_path_factory.mktemp("bare-site")
    for entry in site.iterdir():
        if not entry.name.lower().startswith(HIDDEN) and entry.suffix != ".pth":
            (view / entry.name).symlink_to(entry)
    return view


def run(bare_site: Path, code: str) -> subprocess.CompletedProcess[str]:
    src = Path(graceful.__file__).parents[1]
    return subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": f"{src}{os.pathsep}{bare_site}",
            "PYTHONNOUSERSITE": "1",
            "HOME": str(bare_site),
        },
    )


def test_optional_modules_are_the_extras() -> None:
    assert {"faiss", "pyarrow", "jinja2", "matplotlib", "typer", "sklearn", "mlflow"} <= set(
        OPTIONAL
    )


def test_metrics_losses_and_training_need_no_extra(bare_site: Path) -> None:
    result = run(
        bare_site,
        """
        import torch
        from torch.utils.data import TensorDataset
        from graceful.metrics import FlipFrame, NegativeFlipRate, negative_flip_rate
        from graceful.losses import FocalDistillationLoss, PositiveCongruentLoss
        from graceful.training import OnlineTeacher, TrainConfig, Trainer
        from graceful.release import Gate
        import graceful.embedding, graceful.lqf, graceful.models, graceful.retrieval

        assert negative_flip_rate([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1]) == 0.5
        metric = NegativeFlipRate()
        metric.update([0, 1], [0, 1], [0, 0])
        assert float(metric.compute()) == 0.5
        assert FlipFrame([0, 1], [0, 1], [0, 0]).overall["negative_flip_rate"] == 0.5
        x = torch.randn(32, 3)
        data = TensorDataset(x, (x[:, 0] > 0).long(), torch.arange(32))
        loss = PositiveCongruentLoss(FocalDistillationLoss())
        config = TrainConfig(epochs=1, batch_size=8, progress=False)
        trainer = Trainer(torch.nn.Linear(3, 2), config, loss=loss,
                          teacher=OnlineTeacher(torch.nn.Linear(3, 2)))
        trainer.fit(data, data)
        assert Gate(max_nfr=0.1).evaluate({"negative_flip_rate": 0.05}).passed
        import sys
        hidden = {"faiss", "pyarrow", "jinja2", "matplotlib", "typer", "sklearn", "mlflow"}
        loaded = {name.split(".")[0] for name in sys.modules}
        assert not loaded & hidden, loaded & hidden
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("statement", "extra"),
    [
        ("import graceful.gallery", "gallery"),
        ("import graceful.report", "report"),
        ("import graceful.demo", "demo"),
        ("import graceful.io.predictions", "io"),
        ("from graceful.release import compare_files; compare_files('a.csv', 'b.csv')", "io"),
        ("from graceful.data import load_digits; load_digits()", "demo"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(bare_site: Path, statement: str, extra: str) -> None:
    result = run(
        bare_site,
        f"""
        from graceful.errors import MissingExtraError
        try:
            {statement}
        except MissingExtraError as exc:
            print(str(exc))
        else:
            print("no error")
        """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = result.stdout.strip()
    assert "\\n" not in line and f"pip install 'graceful[{extra}]'" in line, line


def test_the_command_line_without_its_extra_exits_2(bare_site: Path) -> None:
    result = run(bare_site, "from graceful.cli import main\nmain()\n")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'graceful[cli]'" in lines[0], result.stderr


def test_require_returns_the_modules_and_names_the_extra() -> None:
    (module,) = require("io", "reading", ("json",))
    assert module.__name__ == "json"
    with pytest.raises(MissingExtraError, match=r"pip install 'graceful\[gallery\]'") as info:
        require("gallery", "the gallery", ("no_such_module_xyz",))
    assert isinstance(info.value, ImportError) and isinstance(info.value, InputError)
