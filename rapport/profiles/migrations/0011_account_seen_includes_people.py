"""An account's first and last seen cover its people's activity (kept on write from
now on, by profiles.services.accounts_seen_widen); this brings existing accounts up
to date once."""

from django.db import migrations
from django.db.models import Max, Min

CHUNK = 2000


def widen(apps, schema_editor):
    Account = apps.get_model("profiles", "Account")
    ids = list(Account.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        changed = []
        for account in Account.objects.filter(pk__in=chunk).annotate(
            people_first=Min("members__profile__first_seen_at"),
            people_last=Max("members__profile__last_seen_at"),
        ):
            first, last = account.first_seen_at, account.last_seen_at
            if account.people_first and (first is None or account.people_first < first):
                account.first_seen_at = account.people_first
            if account.people_last and (last is None or account.people_last > last):
                account.last_seen_at = account.people_last
            if (first, last) != (account.first_seen_at, account.last_seen_at):
                changed.append(account)
        Account.objects.bulk_update(changed, ["first_seen_at", "last_seen_at"])


class Migration(migrations.Migration):
    dependencies = [("profiles", "0010_trait_edit")]

    operations = [migrations.RunPython(widen, migrations.RunPython.noop)]
