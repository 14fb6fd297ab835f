"""Helpers shared by the `rapport` command and the commands each app adds."""

import json
import os
from typing import Any

import click


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    import django

    django.setup()


def fail(message: str) -> None:
    """Stop the command with one line on stderr and exit status 1."""
    raise click.ClickException(message)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, default=str))
