"""`rapport demo`: a living demo company fed through the real ingestion path."""

import click

from rapport.core.clitools import django_setup, echo_json
from rapport.tenancy.cli import resolve_workspace, workspace_option


@click.command()
@click.option("--customers", type=click.IntRange(1), default=3000, show_default=True)
@click.option("--months", type=click.IntRange(1, 120), default=18, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same story.")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(customers: int, months: int, seed: int, workspace_name: str | None, as_json: bool) -> None:
    """Load a demo company (Northwind Roasters: coffee by subscription and by the bag,
    to people and to offices) with CUSTOMERS customers and MONTHS months of history,
    through the same path as the Tracking API; then resolve it and scan for duplicates."""
    django_setup()
    from rapport.demo.services import demo_load

    workspace = resolve_workspace(workspace_name)
    say = (lambda _: None) if as_json else (lambda line: click.echo(f"  {line}", err=True))
    summary = demo_load(
        workspace=workspace, customers=customers, months=months, seed=seed, progress=say
    )
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"Loaded {summary['customers']:,} customers into {workspace.name!r}: "
        f"{summary['accepted']:,} calls, {summary['purchases']:,} orders, "
        f"{summary['churned']:,} churned, {summary['duplicate_pairs']['profile']} probable "
        f"duplicate customers and {summary['duplicate_pairs']['account']} accounts to review "
        f"({sum(summary['seconds'].values()):.0f} s)."
    )
    for key, counts in (summary.get("journeys") or {}).items():
        c = counts["conversion"]
        click.echo(
            f"  Journey {key}: {c['enrolled']:,} enrolled ({c['enrolled_converted']:,} met the "
            f"goal), {c['holdout']:,} held out ({c['holdout_converted']:,} met it)."
        )
