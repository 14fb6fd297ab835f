"""Each server process keeps its write-key answers until the generation stamp under the
data directory changes; another process's change is seen at the next request."""

import os

from django.utils import timezone

from rapport.tenancy.keys import secret_display_prefix, secret_generate, secret_hash
from rapport.tenancy.models import WriteKey
from rapport.tenancy.selectors import WRITE_KEY_STAMP_NAME, write_key_resolve


def another_process_writes_the_stamp(settings, value: bytes) -> None:
    """What write_key_cache_clear does in another process: the same file, in place."""
    fd = os.open(os.path.join(str(settings.DATA_DIR), WRITE_KEY_STAMP_NAME), os.O_RDWR)
    try:
        os.pwrite(fd, value.ljust(32, b"-"), 0)
    finally:
        os.close(fd)


def test_a_key_revoked_by_another_process_is_refused_at_the_next_request(tenant, settings):
    raw = tenant.created.write_key
    assert write_key_resolve(raw=raw) is not None
    # The other process's revoke: the row changes, this process is not told directly.
    WriteKey.objects.filter(source=tenant.created.source).update(revoked_at=timezone.now())
    assert write_key_resolve(raw=raw) is not None  # still this process's answer
    another_process_writes_the_stamp(settings, b"revoked-elsewhere")
    assert write_key_resolve(raw=raw) is None


def test_a_key_created_by_another_process_works_at_once(tenant, settings):
    raw = secret_generate()
    assert write_key_resolve(raw=raw) is None  # unknown, and remembered as such
    WriteKey.objects.create(
        workspace=tenant.workspace,
        source=tenant.created.source,
        prefix=secret_display_prefix(raw),
        key_hash=secret_hash(raw),
    )
    another_process_writes_the_stamp(settings, b"created-elsewhere")
    grant = write_key_resolve(raw=raw)
    assert grant is not None and grant.source_id == tenant.created.source.pk


def test_without_a_change_the_answer_is_kept(tenant, django_assert_num_queries):
    raw = tenant.created.write_key
    write_key_resolve(raw=raw)
    with django_assert_num_queries(0):
        for _ in range(100):
            assert write_key_resolve(raw=raw) is not None
