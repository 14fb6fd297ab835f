"""`rapport analytics snapshot` and `rapport analytics kpis`."""

import click

from rapport.core.clitools import django_setup, echo_json, fail
from rapport.tenancy.cli import resolve_workspace, workspace_option


@click.group()
def analytics() -> None:
    """Customer KPIs, their daily snapshots, the funnel and cohorts."""


@analytics.command("snapshot")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="The last day (default: yesterday).")
@click.option(
    "--backfill-days",
    type=click.IntRange(0, 730),
    default=0,
    help="Also take the snapshots of this many days before (computed from today's data).",
)
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def snapshot(day, backfill_days, workspace_name, as_json) -> None:
    """Take the KPI snapshots (7, 30 and 90 days) of a day, as the worker does nightly."""
    django_setup()
    from rapport.analytics.services import kpi_snapshots_take
    from rapport.core.errors import RapportError

    workspace = resolve_workspace(workspace_name)
    try:
        result = kpi_snapshots_take(
            workspace_id=workspace.pk,
            day=day.date() if day else None,
            backfill_days=backfill_days,
        )
    except RapportError as error:
        fail(error.message)
    if as_json:
        echo_json(result)
    else:
        click.echo(
            f"{result['snapshots']} snapshots to {result['last_day']} in {result['seconds']} s"
        )


@analytics.command("kpis")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First day (default: 30 ago).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default: yesterday).")
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def kpis_print(start, end, workspace_name, as_json) -> None:
    """The KPIs of a period against the previous one."""
    django_setup()
    from rapport.analytics import kpis, selectors
    from rapport.core.errors import RapportError

    workspace = resolve_workspace(workspace_name)
    try:
        report = selectors.kpis_report(
            workspace=workspace,
            first=start.date() if start else None,
            last=end.date() if end else None,
        )
    except RapportError as error:
        fail(error.message)
    if as_json:
        echo_json(report)
        return
    period = report["period"]
    click.echo(f"{period['first']} to {period['last']} ({period['days']} days)")
    for name in kpis.ORDER:
        now, before = report["figures"][name], report["previous"][name]
        click.echo(f"  {name:22} {_shown(now):>12}   previous {_shown(before):>12}")


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 10 else f"{value:,.2f}"
    return f"{value:,}"
