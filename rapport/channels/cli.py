"""`rapport bounces-read [SOURCE]`: delivery status notifications (RFC 3464) from the
bounce address, read from stdin, a file, an mbox or a Maildir (rapport/channels/bounces.py)."""

import sys
from pathlib import Path

import click

from rapport.core.clitools import django_setup, echo_json, fail


@click.command(name="bounces-read")
@click.argument("source", required=False, default="-")
@click.option("--json", "as_json", is_flag=True)
def bounces_read(source: str, as_json: bool) -> None:
    """Read bounces (RFC 3464 DSNs): one mail on stdin ("-", the default, e.g. from an
    MTA's pipe alias), or a file, an mbox or a Maildir. A permanent failure (5.x.x)
    marks the message bounced and suppresses the address; a transient one (4.x.x) is
    recorded. Reading the same mail again changes nothing."""
    django_setup()
    from rapport.channels import bounces

    if source == "-":
        data = sys.stdin.buffer.read()
        if not data.strip():
            fail("no mail on stdin")
        result = bounces.bounces_read(data)
    else:
        path = Path(source)
        if not path.exists():
            fail(f"{source}: no such file or directory")
        try:
            result = bounces.bounces_read(path)
        except (OSError, mailbox_error()) as error:
            fail(f"{source}: {error}")
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(
            f"{result.read} read: {result.bounced} bounced, {result.deferred} delayed, "
            f"{result.delivered} delivered; {result.not_dsn} not a bounce report, "
            f"{result.not_ours} about no message of ours"
        )


def mailbox_error() -> type[Exception]:
    import mailbox

    return mailbox.Error
