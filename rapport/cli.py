"""The `rapport` command.

`rapport serve`, `rapport worker`, `rapport workers`, `rapport migrate`, `rapport quickstart`, the
commands each app adds (`rapport workspace ...`, `rapport user ...`), and any Django
management command by its own name (`rapport shell`, `rapport check --deploy`).
Errors are one line on stderr and a non-zero exit, never a traceback.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rapport.core.clitools import django_setup, fail

EXIT_ERROR = 1


def _django_command(name: str) -> click.Command:
    @click.command(
        name=name,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    @click.pass_context
    def passthrough(ctx: click.Context) -> None:
        django_setup()
        from django.core.management import execute_from_command_line

        execute_from_command_line(["rapport", name, *ctx.args])

    return passthrough


class RapportGroup(click.Group):
    """Own commands first; any other name goes to Django's management commands."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return _django_command(cmd_name)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(
            "Any Django management command also runs by its name, e.g. "
            "'rapport shell' or 'rapport check --deploy'."
        )


@click.group(cls=RapportGroup)
@click.version_option(package_name="rapport")
def cli() -> None:
    """Rapport: know your customers and keep them."""


def _default_workers() -> int:
    if os.environ.get("WEB_CONCURRENCY"):
        return int(os.environ["WEB_CONCURRENCY"])
    from django.db import connection

    # SQLite has one write lock for the whole file: processes would queue on it (and its
    # busy handler sleeps), while one process's threads share a single group-commit
    # writer and do not contend at all.
    if connection.vendor == "sqlite":
        return 1
    return (os.cpu_count() or 1) + 1


def _pending_migrations() -> list[str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes (default: WEB_CONCURRENCY, else 1 on SQLite, one per core + 1 on "
    "PostgreSQL).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Request threads per worker.",
)
@click.option("--access-log", is_flag=True, help="Log every request to stdout.")
@click.option("--no-collectstatic", is_flag=True, help="Skip collecting static files.")
def serve(
    host: str,
    port: int,
    workers: int | None,
    threads: int,
    access_log: bool,
    no_collectstatic: bool,
) -> None:
    """Serve the web UI and the APIs (granian: HTTP in Rust, Django in threads)."""
    django_setup()
    pending = _pending_migrations()
    if pending:
        fail(f"{len(pending)} database migration(s) not applied; run 'rapport migrate' first")
    if not no_collectstatic:
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)
    if workers is None:
        workers = _default_workers()
    granian = str(Path(sys.executable).parent / "granian")
    args = [
        granian,
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        # Threads let the Tracking API commit concurrent requests together.
        "--blocking-threads",
        str(threads),
        "--no-ws",
        "--respawn-failed-workers",
        "--log-level",
        "warning",
    ]
    if access_log:
        args.append("--access-log")
    args.append("rapport.wsgi:application")
    click.echo(
        f"Rapport listening on http://{host}:{port}/ ({workers} workers x {threads} threads)",
        err=True,
    )
    sys.stdout.flush()
    os.execv(granian, args)  # noqa: S606 - replaces this process with the server


@cli.command()
@click.option("--queue", "queue_name", default="*", show_default=True, help="Queue to work.")
@click.option("--batch", is_flag=True, help="Run what is due, then exit.")
# A task enqueued while every worker is idle (a journey's trigger, a single message)
# waits up to one interval: 0.1 s keeps a trigger's first step well within a second (at
# 1 s the 99th percentile was 1.3 s under 1,000 events/s), for one indexed read a poll.
@click.option("--interval", default=0.1, show_default=True, type=float, help="Poll interval (s).")
def worker(queue_name: str, batch: bool, interval: float) -> None:
    """Run background tasks from the database queue, and enqueue periodic jobs when they
    are due (segments with time windows, RFM). Start as many as you like, on any machine
    that reaches the database."""
    django_setup()
    from django.core.management import call_command

    from rapport.core.memory import long_lived_freeze
    from rapport.core.schedule import schedule_run_due, schedule_thread_start

    options: dict[str, Any] = {
        "queue_name": queue_name,
        "interval": interval,
        "batch": batch,
        # A batch run is for scripts and tests: start at once.
        "no_startup_delay": batch,
    }
    if batch:
        schedule_run_due()
    else:
        schedule_thread_start()
        # What start-up loaded stays for the process's life: out of the collector's scans.
        long_lived_freeze()
    call_command("db_worker", **options)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def workers(as_json: bool) -> None:
    """The workers with their last heartbeat and running tasks, and the tasks taken over
    from workers that died (see RAPPORT_WORKER_LEASE_SECONDS)."""
    django_setup()
    from dataclasses import asdict

    from django.utils import timezone

    from rapport.core.selectors import leases_state

    state = leases_state(takeovers_limit=20)
    if as_json:
        from rapport.core.clitools import echo_json

        echo_json(asdict(state))
        return
    now = timezone.now()
    click.echo(f"Lease {state.lease_seconds:g} s, at most {state.max_takeovers} takeovers a task.")
    for worker in state.workers:
        ago = (now - worker.beat_at).total_seconds()
        tasks = ", ".join(t["task_name"] for t in worker.running) or "idle"
        click.echo(
            f"  {worker.id}  {worker.host} pid {worker.pid}  {worker.state:<7} "
            f"beat {ago:.1f} s ago  {tasks}"
        )
    if state.orphaned:
        click.echo(f"{state.orphaned} running task(s) of dead workers wait to be taken over.")
    for takeover in state.takeovers:
        click.echo(
            f"  {takeover.taken_at:%Y-%m-%d %H:%M:%S}  {takeover.task_name} ({takeover.task_id}) "
            f"from {takeover.lost_worker_id}: {takeover.outcome}, attempt {takeover.attempt}"
        )


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or update the database schema (Django's migrate)."""
    django_setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["rapport", "migrate", "--no-input", *ctx.args])


def _register_app_commands(group: click.Group) -> None:
    from rapport.analytics.cli import analytics
    from rapport.channels.cli import bounces_read
    from rapport.demo.cli import demo
    from rapport.identity.cli import identity
    from rapport.ingest.cli import import_
    from rapport.predictions.cli import models
    from rapport.tenancy.cli import quickstart, token, user, workspace

    for command in (
        workspace,
        user,
        token,
        quickstart,
        import_,
        identity,
        models,
        analytics,
        demo,
        bounces_read,
    ):
        group.add_command(command)


_register_app_commands(cli)


def _run(entry: Callable[..., Any], argv: list[str] | None) -> int:
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import CommandError
    from django.db import DatabaseError

    from rapport.core.errors import RapportError

    try:
        result = entry(args=argv, prog_name="rapport", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("rapport: aborted", err=True)
        return 130
    except click.ClickException as exc:
        if isinstance(exc, click.UsageError):
            exc.show()
        else:
            click.echo(f"rapport: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except (RapportError, CommandError, ImproperlyConfigured) as exc:
        click.echo(f"rapport: error: {exc}", err=True)
        return EXIT_ERROR
    except DatabaseError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"rapport: error: database: {first_line}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(_run(cli.main, argv))


if __name__ == "__main__":
    main()
