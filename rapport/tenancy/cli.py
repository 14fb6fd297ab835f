"""`rapport workspace`, `rapport user`, `rapport token` and `rapport quickstart`."""

import json
import os
from pathlib import Path

import click

from rapport.core.clitools import django_setup, echo_json, fail


def workspace_option(func):
    return click.option(
        "--workspace",
        "workspace_name",
        default=None,
        help="Workspace name (default: the only one, if there is just one).",
    )(func)


def resolve_workspace(name: str | None):
    """The named workspace, or the only one there is."""
    from rapport.tenancy import selectors

    if name:
        return selectors.workspace_get_by_name(name=name)
    workspaces = list(selectors.workspace_list()[:21])
    if len(workspaces) == 1:
        return workspaces[0]
    if not workspaces:
        fail("no workspace exists yet; create one with 'rapport workspace create NAME'")
    names = ", ".join(ws.name for ws in workspaces[:20])
    fail(f"several workspaces exist; pass --workspace NAME (one of: {names})")
    return None


@click.group()
def workspace() -> None:
    """Create and list workspaces."""


@workspace.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def workspace_create(name: str, as_json: bool) -> None:
    """Create a workspace; prints its first write key and an admin API token."""
    django_setup()
    from rapport.tenancy.services import Actor, workspace_create

    created = workspace_create(name=name, actor=Actor.system("cli"))
    if as_json:
        echo_json(
            {
                "workspace": created.workspace.name,
                "workspace_id": str(created.workspace.pk),
                "source": created.source.name,
                "write_key": created.write_key,
                "token": created.token,
            }
        )
        return
    click.echo(f"Workspace {created.workspace.name!r} created ({created.workspace.pk}).")
    click.echo(f"Write key for source {created.source.name!r}: {created.write_key}")
    click.echo(f"Admin API token: {created.token}")
    click.echo("Both are shown only now: keep them somewhere safe.")


@workspace.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def workspace_list(as_json: bool) -> None:
    """List workspaces."""
    django_setup()
    from rapport.tenancy.selectors import workspace_list

    for ws in workspace_list():
        if as_json:
            echo_json({"id": str(ws.pk), "name": ws.name, "created_at": ws.created_at.isoformat()})
        else:
            click.echo(f"{ws.pk}  {ws.name}")


@click.group()
def user() -> None:
    """Create logins for people."""


@user.command("create")
@click.option("--email", required=True, help="Sign-in email.")
@click.option("--name", default="", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--role",
    type=click.Choice(["admin", "marketer", "analyst", "sales", "agent"]),
    default="admin",
    show_default=True,
)
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_create(
    email: str,
    name: str,
    password_stdin: bool,
    role: str,
    workspace_name: str | None,
    as_json: bool,
) -> None:
    """Create a login (or add an existing one) as a member of a workspace. Without
    --password-stdin a password is generated and printed once."""
    django_setup()
    from rapport.tenancy.services import Actor, member_add

    password = None
    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\n")
        if not password:
            fail("--password-stdin given but standard input had no password")
    ws = resolve_workspace(workspace_name)
    membership, generated = member_add(
        workspace=ws,
        email=email,
        role=role,
        name=name,
        password=password,
        actor=Actor.system("cli"),
    )
    if as_json:
        echo_json(
            {
                "email": membership.user.email,
                "workspace": ws.name,
                "role": membership.role,
                "password": generated,
            }
        )
        return
    click.echo(f"{membership.user.email} is {membership.role} of {ws.name!r}.")
    if generated:
        click.echo(f"Password (shown once): {generated}")


@click.group()
def token() -> None:
    """Create and revoke API tokens."""


@token.command("create")
@click.option("--name", required=True, help="What the token is for.")
@click.option(
    "--role",
    type=click.Choice(["admin", "marketer", "analyst", "sales", "agent"]),
    default="admin",
    show_default=True,
)
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_create(name: str, role: str, workspace_name: str | None, as_json: bool) -> None:
    """Create an API token; it is printed once."""
    django_setup()
    from rapport.tenancy.services import Actor, api_token_create

    ws = resolve_workspace(workspace_name)
    api_token, raw = api_token_create(workspace=ws, name=name, role=role, actor=Actor.system("cli"))
    if as_json:
        echo_json({"id": str(api_token.pk), "workspace": ws.name, "role": role, "token": raw})
    else:
        click.echo(raw)


@token.command("revoke")
@click.argument("prefix")
@workspace_option
def token_revoke(prefix: str, workspace_name: str | None) -> None:
    """Revoke the token whose shown prefix (e.g. rpt_AbCd1234) is PREFIX."""
    django_setup()
    from rapport.tenancy.selectors import api_token_list
    from rapport.tenancy.services import Actor, api_token_revoke

    ws = resolve_workspace(workspace_name)
    matches = list(api_token_list(workspace=ws).filter(prefix=prefix)[:2])
    if not matches:
        fail(f"no live token with prefix {prefix!r} in {ws.name!r}")
    if len(matches) > 1:
        fail(f"prefix {prefix!r} matches several tokens; revoke it through the API by id")
    api_token_revoke(token=matches[0], actor=Actor.system("cli"))
    click.echo(f"Revoked {matches[0].name!r} ({prefix}).")


QUICKSTART_WORKSPACE = "Demo"
QUICKSTART_EMAIL = "demo@example.com"


def _quickstart_file() -> Path:
    from django.conf import settings

    return Path(settings.DATA_DIR) / "quickstart.json"


def _write_private(path: Path, data: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)


@click.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Where it serves.")
@click.option(
    "--demo-customers",
    type=click.IntRange(0),
    default=3000,
    show_default=True,
    help="Customers of the demo company loaded into a new demo workspace (0: none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def quickstart(url: str, demo_customers: int, as_json: bool) -> None:
    """Set up a local Rapport to try: migrate, and on an empty database create a demo
    workspace with a login, an API token and a write key, and load the demo company
    into it (see 'rapport demo'). Prints the login and keys (again on each run; they
    are kept in the data directory, readable only by you)."""
    django_setup()
    from django.core.management import call_command

    from rapport.tenancy.selectors import workspace_list
    from rapport.tenancy.services import Actor, member_add, workspace_create

    call_command("migrate", interactive=False, verbosity=0)
    path = _quickstart_file()
    credentials = None
    if path.exists():
        credentials = json.loads(path.read_text())
        if not workspace_list().filter(pk=credentials.get("workspace_id")).exists():
            credentials = None
    if credentials is None:
        if workspace_list().exists():
            message = (
                "Rapport is set up with your own workspaces; sign in with your account at "
                f"{url}/ (create one with 'rapport user create')."
            )
            echo_json({"message": message}) if as_json else click.echo(message)
            return
        actor = Actor.system("quickstart")
        created = workspace_create(name=QUICKSTART_WORKSPACE, actor=actor)
        _, password = member_add(
            workspace=created.workspace,
            email=QUICKSTART_EMAIL,
            role="admin",
            name="Demo admin",
            actor=actor,
        )
        credentials = {
            "workspace": created.workspace.name,
            "workspace_id": str(created.workspace.pk),
            "email": QUICKSTART_EMAIL,
            "password": password,
            "token": created.token,
            "write_key": created.write_key,
        }
        _write_private(path, credentials)
        if demo_customers:
            from rapport.demo.services import demo_load

            if not as_json:
                click.echo(f"Loading the demo company ({demo_customers:,} customers)...")
            say = (lambda _: None) if as_json else (lambda line: click.echo(f"  {line}"))
            loaded = demo_load(workspace=created.workspace, customers=demo_customers, progress=say)
            credentials["demo"] = {
                key: loaded[key] for key in ("customers", "calls", "purchases", "churned")
            }
            _write_private(path, credentials)
    if as_json:
        echo_json({**credentials, "url": url})
        return
    click.echo(
        "\n".join(
            [
                "",
                "Rapport is ready.",
                f"  Sign in:    {url}/   as {credentials['email']}  /  {credentials['password']}",
                f"  API docs:   {url}/api/docs   (Authorize with the token below)",
                f"  API token:  {credentials['token']}",
                f"  Write key:  {credentials['write_key']}   (source 'Default')",
                f"  Kept in {path} (readable only by you).",
                "",
            ]
        )
    )


@user.command("totp-enrol")
@click.argument("email")
def user_totp_enrol(email: str) -> None:
    """Give a staff member a TOTP secret for the Django admin's second factor. Add it to
    an authenticator app, then run 'rapport user totp-confirm EMAIL CODE'."""
    django_setup()
    from rapport.tenancy.services import admin_totp_enrol

    enrolment = admin_totp_enrol(email=email)
    click.echo(f"Secret (type it into the app): {enrolment.secret}")
    click.echo(f"Provisioning URI: {enrolment.uri}")
    click.echo(f"Then confirm with: rapport user totp-confirm {email} CODE")


@user.command("totp-confirm")
@click.argument("email")
@click.argument("code")
def user_totp_confirm(email: str, code: str) -> None:
    """Confirm an enrolled secret with a code from the app; the admin asks for it from now on."""
    django_setup()
    from rapport.tenancy.services import admin_totp_confirm

    admin_totp_confirm(email=email, code=code)
    click.echo(f"{email} signs in to the admin with the app's codes from now on.")


@user.command("totp-remove")
@click.argument("email")
def user_totp_remove(email: str) -> None:
    """Remove a staff member's TOTP devices (a lost phone); they cannot use the admin
    until they enrol again."""
    django_setup()
    from rapport.tenancy.services import admin_totp_remove

    removed = admin_totp_remove(email=email)
    click.echo(f"{removed} device(s) removed for {email}.")
