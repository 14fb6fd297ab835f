"""`rapport identity find-duplicates`: probable duplicate customers (or accounts)."""

import click

from rapport.core.clitools import django_setup, echo_json
from rapport.tenancy.cli import resolve_workspace, workspace_option


@click.group()
def identity() -> None:
    """Identity resolution: duplicate customers and accounts."""


@identity.command("find-duplicates")
@click.option(
    "--min-probability",
    type=click.FloatRange(0, 1),
    default=None,
    help="Only pairs at least this probable (default: the workspace's setting, 0.9).",
)
@click.option(
    "--kind",
    type=click.Choice(["profile", "account"]),
    default="profile",
    show_default=True,
    help="Compare customer profiles or accounts (companies).",
)
@click.option(
    "--save",
    is_flag=True,
    help="Also keep the pairs for review (GET /api/v1/identity/duplicates), and merge "
    "those above the workspace's auto-merge probability.",
)
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def find_duplicates(
    min_probability: float | None,
    kind: str,
    save: bool,
    workspace_name: str | None,
    as_json: bool,
) -> None:
    """Print pairs of profiles that share no identifier but are probably one customer
    (Splink), most probable first, with the fields that agree."""
    django_setup()
    from rapport.identity.services import duplicate_candidates_refresh, duplicates_find
    from rapport.tenancy.services import Actor

    workspace = resolve_workspace(workspace_name)
    pairs = duplicates_find(workspace_id=workspace.pk, kind=kind, min_probability=min_probability)
    record, key = ("profile", "user_id") if kind == "profile" else ("account", "group_id")
    for pair in pairs:
        if as_json:
            echo_json(pair)
        else:
            click.echo(
                f"{pair['probability']:.4f}  {pair[f'{key}_a'] or pair[f'{record}_a']}  ~  "
                f"{pair[f'{key}_b'] or pair[f'{record}_b']}  "
                f"agree: {', '.join(pair['agreeing_fields'])}"
            )
    if save:
        summary = duplicate_candidates_refresh(
            workspace=workspace, kind=kind, actor=Actor.system("cli"), found=pairs
        )
        if not as_json:
            click.echo(
                f"Kept for review: {summary['new']} new, {summary['updated']} still open, "
                f"{summary['closed']} closed, {summary['merged']} merged automatically."
            )
    elif not as_json:
        click.echo(f"{len(pairs)} probable duplicate pair(s).", err=True)
