from datetime import UTC, datetime, timedelta

import orjson
import pytest

from rapport.ingest.spec import MAX_EVENT_BYTES, Invalid, TooLarge, event_parse, refused_from

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def parse(raw, **kwargs):
    return event_parse(raw, received_at=NOW, **kwargs)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "track", "event": "X"}, "userId"),
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "track", "userId": "u", "event": "  "}, "event"),
        ({"type": "track", "userId": "u", "event": 5}, "event"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "alias", "previousId": "a"}, "userId"),
        ({"type": "fly", "userId": "u"}, "type"),
        ({"userId": "u"}, "type"),
        ({"type": "identify", "userId": ["u"]}, "userId"),
        ({"type": "identify", "userId": True}, "userId"),
        ({"type": "identify", "userId": "u" * 256}, "userId"),
        ({"type": "identify", "userId": "u", "traits": []}, "traits"),
        ({"type": "track", "userId": "u", "event": "E", "properties": "x"}, "properties"),
        ({"type": "identify", "userId": "u", "context": 5}, "context"),
        ({"type": "identify", "userId": "u", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "identify", "userId": "u", "timestamp": 1700000000}, "timestamp"),
        (
            {"type": "identify", "userId": "u", "originalTimestamp": "0001-01-01T00:00:00Z"},
            "originalTimestamp",
        ),
        ({"type": "page", "anonymousId": "a", "name": 3}, "name"),
        ("not an object", "item"),
        ({"type": "identify", "userId": "u", "traits": {"name": "a\x00b"}}, "traits"),
    ],
)
def test_invalid_items_name_the_field(raw, field):
    with pytest.raises(Invalid) as exc:
        parse(raw)
    assert exc.value.field == field


def test_oversized_event_is_refused():
    with pytest.raises(Invalid, match="32 KB"):
        parse(
            {
                "type": "track",
                "userId": "u",
                "event": "E",
                "properties": {"x": "y" * MAX_EVENT_BYTES},
            }
        )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "identify", "userId": 42}, {"user_id": "42"}),
        ({"type": "identify", "anonymousId": " a1 "}, {"anonymous_id": "a1", "user_id": ""}),
        (
            {"type": "track", "userId": "u", "event": " Order Completed "},
            {"event": "Order Completed"},
        ),
        ({"type": "page", "anonymousId": "a", "name": "Pricing"}, {"event": "Pricing"}),
        ({"type": "screen", "anonymousId": "a"}, {"event": ""}),
        ({"type": "group", "userId": "u", "groupId": 7}, {"group_id": "7"}),
        ({"type": "alias", "userId": "u", "previousId": "a"}, {"previous_id": "a"}),
        ({"type": "identify", "userId": "u", "messageId": "m-1"}, {"message_id": "m-1"}),
    ],
)
def test_valid_items(raw, expected):
    row = parse(raw)
    assert {key: row[key] for key in expected} == expected


def test_missing_message_id_gets_one():
    first = parse({"type": "identify", "userId": "u"})["message_id"]
    second = parse({"type": "identify", "userId": "u"})["message_id"]
    assert first and second and first != second


def test_forced_type_wins_over_the_items_own():
    assert (
        parse({"type": "identify", "userId": "u", "event": "E"}, forced_type="track")["type"]
        == "track"
    )


class TestTimestamps:
    def test_clock_skew_is_corrected(self):
        # The device's clock is 2 hours fast; it recorded the event 10 s before sending.
        device_now = NOW + timedelta(hours=2)
        row = parse(
            {
                "type": "track",
                "userId": "u",
                "event": "E",
                "originalTimestamp": (device_now - timedelta(seconds=10)).isoformat(),
                "sentAt": device_now.isoformat(),
            }
        )
        assert row["timestamp"] == NOW - timedelta(seconds=10)
        assert row["original_timestamp"] == device_now - timedelta(seconds=10)
        assert row["sent_at"] == device_now

    def test_batch_sent_at_applies_to_its_items(self):
        row = parse(
            {
                "type": "track",
                "userId": "u",
                "event": "E",
                "originalTimestamp": "2026-05-01T13:59:00Z",
            },
            batch_sent_at=datetime(2026, 5, 1, 14, 0, tzinfo=UTC),
        )
        assert row["timestamp"] == NOW - timedelta(minutes=1)

    def test_explicit_historical_timestamp_is_honoured(self):
        row = parse(
            {"type": "track", "userId": "u", "event": "E", "timestamp": "1997-01-01T00:00:00Z"},
            batch_sent_at=NOW,
        )
        assert row["timestamp"] == datetime(1997, 1, 1, tzinfo=UTC)

    def test_no_time_means_received_now(self):
        row = parse({"type": "identify", "userId": "u"})
        assert row["timestamp"] == row["received_at"] == NOW
        assert row["original_timestamp"] is None

    def test_naive_times_are_utc(self):
        row = parse({"type": "identify", "userId": "u", "timestamp": "2026-04-30T08:00:00"})
        assert row["timestamp"] == datetime(2026, 4, 30, 8, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("ahead", "flagged"), [(timedelta(hours=23), False), (timedelta(days=2), True)]
    )
    def test_future_events_are_flagged(self, ahead, flagged):
        row = parse({"type": "identify", "userId": "u", "timestamp": (NOW + ahead).isoformat()})
        assert row["in_future"] is flagged


def test_batch_context_is_merged_under_the_items_own():
    row = parse(
        {
            "type": "identify",
            "userId": "u",
            "context": {"ip": "1.2.3.4", "library": {"name": "mine"}},
        },
        batch_context={"library": {"name": "batch"}, "locale": "en-GB"},
    )
    assert row["context"] == {"ip": "1.2.3.4", "library": {"name": "mine"}, "locale": "en-GB"}


def test_identify_traits_sent_in_context_are_traits():
    row = parse(
        {
            "type": "identify",
            "userId": "u",
            "traits": {"plan": "pro"},
            "context": {"traits": {"email": "a@b.co", "plan": "free"}},
        }
    )
    assert row["traits"] == {"email": "a@b.co", "plan": "pro"}
    assert (
        parse({"type": "track", "userId": "u", "event": "E", "context": {"traits": {"x": 1}}})[
            "traits"
        ]
        == {}
    )


NUL_ITEMS = [
    ({"type": "track", "userId": "u", "event": "E", "properties": {"q": "a\x00b"}}, "properties"),
    ({"type": "identify", "userId": "u", "traits": {"tags": ["ok", "\x00"]}}, "traits"),
    ({"type": "identify", "userId": "u", "traits": {"na\x00me": "x"}}, "traits"),
    ({"type": "track", "userId": "u", "event": "E", "context": {"ip": "\x00"}}, "context"),
    ({"type": "identify", "userId": "u\x00"}, "userId"),
    ({"type": "identify", "userId": "u", "anonymousId": "\x00a"}, "anonymousId"),
    ({"type": "identify", "userId": "u", "messageId": "m\x00"}, "messageId"),
    ({"type": "track", "userId": "u", "event": "Sign\x00ed Up"}, "event"),
    ({"type": "group", "userId": "u", "groupId": "g\x00"}, "groupId"),
    ({"type": "identify\x00", "userId": "u"}, "type"),
    ({"type": "identify", "userId": "u", "k\x00": 1}, "item"),
]


@pytest.mark.parametrize(("raw", "field"), NUL_ITEMS)
def test_a_nul_character_anywhere_refuses_the_item_naming_the_place(raw, field):
    with pytest.raises(Invalid, match="NUL") as exc:
        parse(raw)
    assert exc.value.field == field
    assert not isinstance(exc.value, TooLarge)


def test_a_nul_character_in_the_batch_context_refuses_its_items():
    with pytest.raises(Invalid, match=r"context\.library\.name contains a NUL") as exc:
        parse(
            {"type": "identify", "userId": "u"},
            batch_context={"library": {"name": "sdk\x00"}},
        )
    assert exc.value.field == "context"


def test_the_text_backslash_u0000_is_not_a_nul_character():
    row = parse({"type": "identify", "userId": "u", "traits": {"path": "C:\\u0000"}})
    assert row["traits"] == {"path": "C:\\u0000"}


@pytest.mark.parametrize(("raw", "field"), NUL_ITEMS)
def test_a_refused_item_with_nul_is_kept_escaped(raw, field):
    with pytest.raises(Invalid) as exc:
        parse(raw)
    refused = refused_from(3, raw, exc.value)
    assert "\x00" not in orjson.dumps(refused.payload).decode("unicode_escape")
    assert "\\u0000" in orjson.dumps(refused.payload).decode()
    assert "\x00" not in refused.message_id + refused.field + refused.reason


def test_the_batch_context_counts_towards_each_events_size():
    context = {"library": {"name": "sdk"}, "pad": "x" * (MAX_EVENT_BYTES - 100)}
    # Alone each part is under the limit; as stored, the event is over it.
    assert len(orjson.dumps(context)) < MAX_EVENT_BYTES
    with pytest.raises(TooLarge):
        parse(
            {"type": "identify", "userId": "u", "traits": {"x": "y" * 200}}, batch_context=context
        )


def test_a_refused_item_is_kept_with_the_batch_context():
    raw = {"type": "track", "userId": "u", "context": {"ip": "1.2.3.4"}}
    with pytest.raises(Invalid) as exc:
        parse(raw, batch_context={"locale": "en"})
    refused = refused_from(0, raw, exc.value, batch_context={"locale": "en"})
    assert refused.payload["context"] == {"locale": "en", "ip": "1.2.3.4"}
