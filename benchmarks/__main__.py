"""Run a benchmark: ``python -m benchmarks <name> [options]`` from the repository root.

The ``make bench-*`` targets call these commands with the settings whose results are
committed in ``benchmarks/results/``. Exit status 2 and one line on stderr on bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from graceful.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmarks on real data (results in benchmarks/results/).",
)


def fail(command: str, message: str) -> NoReturn:
    """Print ``benchmarks <command>: error: <message>`` on stderr and exit with status 2."""
    typer.echo(f"benchmarks {command}: error: {message}", err=True)
    raise typer.Exit(2)


@app.command("pct")
def bench_pct(
    setting: Annotated[
        list[str] | None,
        typer.Option(
            help="Scenario to run (repeatable): image_new_seed, text_half_data, "
            "text_larger_head, mnist1d_new_seed, mnist1d_half_data, mnist1d_larger_mlp, "
            "rotten_tomatoes, digits."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of model seeds (0, 1, ...).")] = 5,
    sweep_seeds: Annotated[
        int, typer.Option(help="Seeds on which the default recipe's lambda is swept (0: none).")
    ] = 1,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "pct",
) -> None:
    """Positive-congruent training: the default recipe, the papers' recipes, ELODI, the
    Bayesian prediction update and the ensemble paragon, against no treatment."""
    from benchmarks.runner import run_pct

    names = setting or ["image_new_seed", "text_half_data", "text_larger_head"]
    try:
        if seeds < 1:
            raise InputError(f"--seeds must be >= 1, got {seeds}")
        if not 0 <= sweep_seeds <= seeds:
            raise InputError(f"--sweep-seeds must be in [0, --seeds], got {sweep_seeds}")
        results = run_pct(
            names,
            list(range(seeds)),
            out_dir=out,
            sweep_seeds=list(range(sweep_seeds)),
            stem=stem,
            command="python -m benchmarks pct " + " ".join(sys.argv[2:]),
            log=lambda line: typer.echo(line, err=True),
        )
    except InputError as exc:
        fail("pct", str(exc))
    from benchmarks.output import markdown_table

    for summary in results["settings"]:
        typer.echo(markdown_table(summary))
    typer.echo(f"results: {out / (stem + '.md')}  {out / (stem + '.html')}")


@app.command("pct-cost")
def bench_pct_cost(
    setting: Annotated[
        list[str] | None,
        typer.Option(help="Scenario to time (repeatable); default: the six of issue 14."),
    ] = None,
    rounds: Annotated[int, typer.Option(help="Pairs of runs (plain, default) per scenario.")] = 7,
    epochs: Annotated[int, typer.Option(help="Epochs per run.")] = 3,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "pct_teacher_cost",
) -> None:
    """The cached teacher's cost per epoch, plain and default-recipe runs interleaved."""
    from benchmarks.pct_cost import run_teacher_cost

    names = setting or [
        "image_new_seed",
        "mnist1d_new_seed",
        "mnist1d_half_data",
        "mnist1d_larger_mlp",
        "text_half_data",
        "text_larger_head",
    ]
    try:
        results = run_teacher_cost(
            names,
            out_dir=out,
            stem=stem,
            rounds=rounds,
            epochs=epochs,
            command="python -m benchmarks pct-cost " + " ".join(sys.argv[2:]),
            log=lambda line: typer.echo(line, err=True),
        )
    except InputError as exc:
        fail("pct-cost", str(exc))
    for row in results["settings"]:
        typer.echo(f"{row['name']}: {row['ratio']:.3f}x")
    typer.echo(f"results: {out / (stem + '.md')}")


@app.command("bct")
def bench_bct(
    setting: Annotated[
        list[str] | None,
        typer.Option(help="Setting to run (repeatable): animal_mnist, rotten_tomatoes, digits."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of model seeds (0, 1, ...).")] = 3,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "bct",
) -> None:
    """Backward-compatible embeddings: independent, L2, BCT, transformation; backfill curves."""
    from benchmarks.bct import bct_markdown, run_bct

    _run_bench("bct", run_bct, bct_markdown, setting, seeds, out, stem, (".md", ".html"))


@app.command("hetero")
def bench_hetero(
    setting: Annotated[
        list[str] | None,
        typer.Option(help="Setting to run (repeatable): animal_mnist, rotten_tomatoes, digits."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of model seeds (0, 1, ...).")] = 3,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "hetero",
) -> None:
    """Edge models that search a large model's gallery: cost vs asymmetric retrieval."""
    from benchmarks.hetero import hetero_markdown, run_hetero

    _run_bench("hetero", run_hetero, hetero_markdown, setting, seeds, out, stem, (".md",))


@app.command("lqf")
def bench_lqf(
    setting: Annotated[
        list[str] | None,
        typer.Option(
            help="Setting to run (repeatable): mnist_cnn, mnist_cnn_digits, efficientnet."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of seeds (0, 1, ...), at least 2.")] = 3,
    tune: Annotated[
        bool,
        typer.Option(
            help="Search each method's grid on the validation images first (seed 0) and use"
            " its choices; writes <stem>_tuning.json."
        ),
    ] = False,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "lqf",
) -> None:
    """Linearized fine-tuning (LQF) vs nonlinear fine-tuning, ablations, predictability."""
    from benchmarks.lqf import lqf_markdown, run_lqf

    _run_bench(
        "lqf", run_lqf, lqf_markdown, setting, seeds, out, stem, (".md", ".json"),
        defaults=("mnist_cnn", "efficientnet"), min_seeds=2,
        why=" (runs from different seeds are compared)", tune=tune,
    )  # fmt: skip


@app.command("adapters")
def bench_adapters(
    setting: Annotated[
        list[str] | None,
        typer.Option(help="Setting to run (repeatable): text, text_l3, image, digits."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of seeds (0, 1, ...).")] = 5,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "adapters",
) -> None:
    """Query adapters: new-model queries against the old gallery, against a full re-embed."""
    from benchmarks.adapters import adapters_markdown, run_adapters

    _run_bench(
        "adapters", run_adapters, adapters_markdown, setting, seeds, out, stem, (".md", ".json"),
        defaults=("text", "image"),
    )  # fmt: skip


@app.command("clusters")
def bench_clusters(
    setting: Annotated[
        list[str] | None,
        typer.Option(help="Setting to run (repeatable): text, image, digits."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of seeds (0, 1, ...).")] = 5,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "clusters",
) -> None:
    """Old k-means clusters serving new-model vectors through an adapter, vs re-clustering."""
    from benchmarks.clusters_chain import clusters_markdown, run_clusters

    _run_bench(
        "clusters", run_clusters, clusters_markdown, setting, seeds, out, stem, (".md", ".json"),
        defaults=("text", "image"),
    )  # fmt: skip


@app.command("chain")
def bench_chain(
    setting: Annotated[
        list[str] | None, typer.Option(help="Setting to run (repeatable): image, digits.")
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of seeds (0, 1, ...).")] = 5,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "chain",
) -> None:
    """A chain of versions v1 -> v2 -> v3: v3 queries against v1 items through adapters."""
    from benchmarks.clusters_chain import chain_markdown, run_chain

    _run_bench(
        "chain", run_chain, chain_markdown, setting, seeds, out, stem, (".md", ".json"),
        defaults=("image",),
    )  # fmt: skip


@app.command("chain-bct")
def bench_chain_bct(
    setting: Annotated[
        list[str] | None, typer.Option(help="Setting to run (repeatable): image, digits.")
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of seeds (0, 1, ...).")] = 5,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "chain_bct",
) -> None:
    """A chain v1 -> v2 -> v3 kept compatible by training: v3 with BCT on v2 alone against
    v3 with BCT on v1 and v2; its own accuracy and its retrieval of v1 items."""
    from benchmarks.chain_bct import chain_bct_markdown, run_chain_bct

    _run_bench(
        "chain-bct", run_chain_bct, chain_bct_markdown, setting, seeds, out, stem,
        (".md", ".json"), defaults=("image",),
    )  # fmt: skip


@app.command("kd-control")
def bench_kd_control(
    setting: Annotated[
        list[str] | None,
        typer.Option(help="Setting to run (repeatable): cnn_4ep, cnn_12ep, mlp, text, digits."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Number of model seeds (0, 1, ...).")] = 3,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("benchmarks/results"),
    stem: Annotated[str, typer.Option(help="Stem of the result files.")] = "kd_control",
) -> None:
    """A plain-PyTorch control: does distillation from the old model raise the new one's
    error on each setting (no graceful training code involved)?"""
    from benchmarks.kd_control import kd_markdown, run_kd_control

    _run_bench(
        "kd-control", run_kd_control, kd_markdown, setting, seeds, out, stem, (".md", ".json"),
        defaults=("cnn_4ep", "cnn_12ep", "mlp", "text"),
    )  # fmt: skip


def _run_bench(
    name: str,
    run: Callable[..., dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
    setting: list[str] | None,
    seeds: int,
    out: Path,
    stem: str,
    suffixes: tuple[str, ...],
    *,
    defaults: Sequence[str] = ("animal_mnist", "rotten_tomatoes"),
    min_seeds: int = 1,
    why: str = "",
    **options: Any,
) -> None:
    """Run a ``bench`` whose runner takes (settings, seeds, out_dir, stem, command, log).

    ``defaults`` are the settings run when none is named; ``options`` go to the runner.
    """
    try:
        if seeds < min_seeds:
            raise InputError(f"--seeds must be >= {min_seeds}{why}, got {seeds}")
        results = run(
            setting or list(defaults),
            list(range(seeds)),
            out_dir=out,
            stem=stem,
            command=f"python -m benchmarks {name} " + " ".join(sys.argv[2:]),
            log=lambda line: typer.echo(line, err=True),
            **options,
        )
    except InputError as exc:
        fail(name, str(exc))
    for summary in results["settings"]:
        typer.echo(markdown(summary))
    typer.echo("results: " + "  ".join(str(out / (stem + suffix)) for suffix in suffixes))


if __name__ == "__main__":
    app()
