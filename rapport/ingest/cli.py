"""`rapport import events FILE` and `rapport import customers FILE.csv --id-column COL`."""

from pathlib import Path

import click

from rapport.core.clitools import django_setup, echo_json
from rapport.tenancy.cli import resolve_workspace, workspace_option


@click.group(name="import")
def import_() -> None:
    """Import events (JSON Lines) or customers (CSV). Re-running the same file resumes
    where it stopped and stores nothing twice."""


def _run_import(
    *, kind: str, path: Path, id_column: str, workspace_name, as_json: bool, background: bool
) -> None:
    django_setup()
    from rapport.ingest import files
    from rapport.ingest.services import import_job_create, import_run
    from rapport.tenancy.services import Actor

    workspace = resolve_workspace(workspace_name)
    job = import_job_create(
        workspace=workspace,
        kind=kind,
        path=path,
        filename=path.name,
        id_column=id_column,
        actor=Actor.system("cli"),
    )
    resumed = job.rows_done
    total = files.count_rows(path, kind=kind)
    show = not as_json and job.status != job.Status.DONE
    if show:
        label = f"Importing {path.name}"
        if resumed:
            label += f" (resuming after row {resumed})"
        with click.progressbar(length=max(total - resumed, 0), label=label, show_pos=True) as bar:
            job = import_run(import_job_id=job.pk, path=path, progress=bar.update)
    else:
        job = import_run(import_job_id=job.pk, path=path)
    if not background:
        # Identity resolution and the other consumers of the stored events, as a
        # worker would run them, so the customers are in their profiles on return.
        if not as_json:
            click.echo("Resolving profiles...")
        _queue_drain()
    summary = {
        "import_id": str(job.pk),
        "file": path.name,
        "kind": kind,
        "status": job.status,
        "rows": job.rows_done,
        "accepted": job.accepted,
        "rejected": job.rejected,
        "errors": job.errors[:20],
    }
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{job.rows_done} rows: {job.accepted} accepted, {job.rejected} rejected.")
    for error in job.errors[:10]:
        where = f"line {error['line']}" if "line" in error else f"row {error['row']}"
        click.echo(f"  {where}: {error['field']}: {error['reason']}")
    if job.rejected > 10:
        click.echo(f"  ... see GET /api/v1/imports/{job.pk} for the first {len(job.errors)}")


def _queue_drain() -> None:
    import logging

    from django.core.management import call_command

    logging.getLogger("django_tasks").setLevel(logging.WARNING)
    call_command("db_worker", queue_name="default", batch=True, no_startup_delay=True, verbosity=0)


background_option = click.option(
    "--background",
    is_flag=True,
    help="Leave identity resolution of the imported rows to running workers "
    "(default: do it before returning).",
)


@import_.command("events")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@background_option
def import_events(file: Path, workspace_name: str | None, as_json: bool, background: bool) -> None:
    """Import events from FILE, one Segment-spec JSON object per line."""
    _run_import(
        kind="events",
        path=file,
        id_column="",
        workspace_name=workspace_name,
        as_json=as_json,
        background=background,
    )


@import_.command("customers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id-column", required=True, help="The column holding each customer's user id.")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@background_option
def import_customers(
    file: Path, id_column: str, workspace_name: str | None, as_json: bool, background: bool
) -> None:
    """Import customers from a CSV FILE: each row an identify; the other columns become
    traits, with numbers and true/false recognised."""
    _run_import(
        kind="customers",
        path=file,
        id_column=id_column,
        workspace_name=workspace_name,
        as_json=as_json,
        background=background,
    )
