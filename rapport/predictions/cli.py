"""`rapport models train clv|churn` and `rapport models score`."""

from datetime import UTC

import click

from rapport.core.clitools import django_setup, echo_json, fail
from rapport.tenancy.cli import resolve_workspace, workspace_option


@click.group()
def models() -> None:
    """Predictions: lifetime value (BG/NBD + Gamma-Gamma) and churn risk."""


@models.group()
def train() -> None:
    """Fit a new version of a model, print its parameters and metrics, and score every
    customer with it."""


def _finish(model, *, as_json: bool, score: bool) -> None:
    from rapport.predictions import selectors, services

    if score:
        services.model_score(model=model)
        model.refresh_from_db()
    document = selectors.model_document(model)
    if as_json:
        echo_json(document)
        return
    click.echo(f"{model.kind} model v{model.version} trained in {model.seconds:.1f} s")
    if model.kind == "clv":
        b, g = document["bgnbd"], document["gamma_gamma"]
        click.echo(f"  time unit: {document['time_unit']}, calibration to {document['as_of']}")
        click.echo(
            f"  BG/NBD:      r={b['r']:.3f} alpha={b['alpha']:.3f} a={b['a']:.3f} b={b['b']:.3f}"
        )
        click.echo(f"  Gamma-Gamma: p={g['p']:.2f} q={g['q']:.2f} gamma={g['gamma']:.2f}")
        holdout = document["metrics"].get("holdout")
        if holdout:
            click.echo(
                f"  holdout {holdout['from']}..{holdout['to']}: predicted "
                f"{holdout['predicted_total']} purchases, actual {holdout['actual_total']}, "
                f"MAE {holdout['mae']}, correlation {holdout['correlation']}"
            )
    else:
        m = document["metrics"]
        click.echo(f"  label: {document['label']}; {m.get('validation')}")
        click.echo(
            f"  ROC AUC {m['roc_auc']}  PR AUC {m['pr_auc']}  Brier {m['brier']}  "
            f"lift (top decile) {m['lift_top_decile']}  on {m['customers']} customers"
        )
        for driver in document["drivers"][:5]:
            click.echo(
                f"  driver: {driver['description']}: {driver['relative_risk']}x "
                f"[{driver['ci_low']}, {driver['ci_high']}], {driver['support']} customers"
            )
    if score:
        click.echo(f"  scored {model.scored} customers")


def _run(train_call):
    from rapport.core.errors import RapportError

    try:
        return train_call()
    except RapportError as error:
        fail(error.message)


@train.command("clv")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Calibration cut-off (inclusive).")
@click.option("--time-unit", type=click.Choice(["week", "day"]), default=None)
@click.option("--no-score", is_flag=True, help="Do not score the customers afterwards.")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON.")
def train_clv(as_of, time_unit, no_score, workspace_name, as_json) -> None:
    """Fit BG/NBD and Gamma-Gamma on the purchase events; the purchases after --as-of
    are the holdout the fit is checked on."""
    django_setup()
    from rapport.predictions.services import clv_model_train
    from rapport.tenancy.services import Actor

    workspace = resolve_workspace(workspace_name)
    model = _run(
        lambda: clv_model_train(
            workspace=workspace,
            actor=Actor.system("cli"),
            as_of=as_of.date() if as_of else None,
            time_unit=time_unit,
        )
    )
    _finish(model, as_json=as_json, score=not no_score)


@train.command("churn")
@click.option("--label-event", help="Churn is this event (e.g. 'Subscription Cancelled')...")
@click.option("--horizon-days", type=click.IntRange(1, 365), help="...within this many days.")
@click.option(
    "--inactive-days", type=click.IntRange(1, 365), help="Churn is no activity for N days."
)
@click.option("--label-trait", help="Churn is this trait (e.g. from billing)...")
@click.option("--positive", help="...having this value (e.g. yes).")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Train as of this date.")
@click.option("--no-score", is_flag=True, help="Do not score the customers afterwards.")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON.")
def train_churn(
    label_event,
    horizon_days,
    inactive_days,
    label_trait,
    positive,
    as_of,
    no_score,
    workspace_name,
    as_json,
) -> None:
    """Train the churn model (with the workspace's churn label unless one is given)."""
    django_setup()
    from rapport.predictions.services import churn_label_resolve, churn_model_train
    from rapport.tenancy.services import Actor

    if sum(bool(v) for v in (label_event, inactive_days, label_trait)) > 1:
        fail("give one of --label-event, --inactive-days, --label-trait")
    if label_trait and not positive:
        fail("--label-trait needs --positive")
    workspace = resolve_workspace(workspace_name)

    def call():
        label = churn_label_resolve(
            workspace=workspace,
            label_event=label_event,
            horizon_days=horizon_days,
            inactive_days=inactive_days,
            label_trait=label_trait,
            positive=positive,
        )
        return churn_model_train(
            workspace=workspace,
            actor=Actor.system("cli"),
            label=label,
            as_of=as_of.replace(tzinfo=UTC) if as_of else None,
        )

    model = _run(call)
    _finish(model, as_json=as_json, score=not no_score)


@models.command("score")
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def score(workspace_name, as_json) -> None:
    """Score every customer with the latest CLV and churn models."""
    django_setup()
    from rapport.predictions.services import models_score

    workspace = resolve_workspace(workspace_name)
    result = models_score(workspace_id=workspace.pk)
    if as_json:
        echo_json(result)
    else:
        clv, churn = result["clv"]["scored"], result["churn"]["scored"]
        click.echo(f"CLV: {clv} customers; churn: {churn} customers")
