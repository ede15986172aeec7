"""The ``kanopy`` command: a thin layer over the library (parse, call, print)."""

from __future__ import annotations

import click
from rich.console import Console


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kanopy")
def main() -> None:
    """kanopy: Kolmogorov-Arnold Networks for science."""


@main.command()
@click.option("--seed", default=0, show_default=True, help="Seed of the data and the network.")
@click.option("--quiet", is_flag=True, help="Print only the final line.")
def demo(seed: int, quiet: bool) -> None:
    """Fit exp(sin(pi x) + y^2) to high accuracy from a [2, 5, 1] KAN and print the schedule."""
    from . import demo as demo_module

    console = Console(quiet=quiet)
    result = demo_module.run(seed=seed, console=console, progress=not quiet)
    if quiet:
        click.echo(f"final test RMSE: {result.final_test_rmse:.3e}")


@main.command()
def kernels() -> None:
    """Build (once, cached) and report the fused C++ kernels."""
    import warnings

    from . import _extension

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ops = _extension.ops()
    if ops is not None:
        click.echo(f"fused CPU kernels: ready (cache: {_extension.cache_dir()})")
    else:
        reason = str(caught[0].message) if caught else "disabled by KANOPY_NO_EXTENSION"
        click.echo(f"fused CPU kernels: unavailable, using pure PyTorch ({reason})")


if __name__ == "__main__":  # pragma: no cover
    main()
