"""An email block decided when it is opened: `{% next_best_action %}` in the mail (sent
to a real SMTP server) renders a signed image in a signed link; loading the image
decides once per message and placement and records the impression; clicking records the
click and goes to the action's own link, never anywhere else; a token changed by one
character is refused."""

import re
from decimal import Decimal
from html import unescape

import pytest
from django.test import Client

from rapport.channels import services, tracking
from rapport.decisions import blocks
from rapport.decisions.models import BlockDecision, Decision, DecisionAction, Outcome
from tests.channels.conftest import customer, single
from tests.decisions.conftest import action_add, settings_set

BASE = "https://crm.example.com"
HTML = (
    "<p>Hello {{ customer.first_name }}</p>"
    '<p><a href="https://shop.example.com/news">News</a></p>'
    '{% next_best_action placement="email_footer" alt="Our pick for you" %}'
)


@pytest.fixture
def smtp(settings, mailbox):
    settings.RAPPORT_EMAIL_URL = f"smtp://{mailbox.host}:{mailbox.port}"
    settings.RAPPORT_PUBLIC_URL = BASE
    return mailbox


def _send(shop, smtp, person, html=HTML, **content):
    message = single(shop, person, html=html, **content)
    assert services.message_send(message_id=message.pk) == "sent"
    mail = smtp.messages[-1]
    return message, mail


def _block_urls(mail) -> tuple[str, str]:
    html = mail.get_body(preferencelist=("html",)).get_content()
    image = unescape(re.search(r'src="([^"]*/m/nba/[^"]+\.png)"', html).group(1))
    click = unescape(re.search(r'href="([^"]*/m/nba/[^"]+/click)"', html).group(1))
    return image.removeprefix(BASE), click.removeprefix(BASE)


def test_the_block_is_decided_at_the_first_open_and_kept(shop, smtp):
    settings_set(shop, control_percent=0)
    action_add(
        shop,
        "spring-sale",
        channels=["email"],
        placements=["email_footer"],
        value=Decimal("1000000"),
        content={
            "email": {
                "title": "Spring sale",
                "image_url": "https://cdn.example.com/spring.png",
                "link_url": "https://shop.example.com/spring",
            }
        },
    )
    action_add(shop, "elsewhere", channels=["email"], placements=["header"])
    ann = customer(shop, "ann", email="ann@example.com", first_name="Ann")
    message, mail = _send(shop, smtp, ann)
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert 'alt="Our pick for you"' in html
    image, click = _block_urls(mail)
    # The block's link is its own, not wrapped in the message's click tracking; the
    # other link is.
    assert f'href="{BASE}/m/nba/' in html and "/m/c/" in html
    # The plain-text part carries the block's link.
    assert f"{BASE}{click}" in mail.get_body(preferencelist=("plain",)).get_content()
    # Sending decided nothing: the block waits for the open.
    assert not Decision.objects.exists()

    client = Client()
    first = client.get(image)
    assert first.status_code == 302 and first["Location"] == "https://cdn.example.com/spring.png"
    assert first["Cache-Control"].startswith("max-age=0")
    block = BlockDecision.objects.get()
    assert block.message_id == message.pk and block.placement == "email_footer"
    assert block.action.key == "spring-sale"
    decision = Decision.objects.get()
    assert decision.origin == "email_open" and decision.channel == "email"
    assert decision.placement == "email_footer" and decision.profile_id == ann.pk
    assert list(Outcome.objects.values_list("outcome", flat=True)) == ["impression"]

    # Reloaded, opened again: the same action, no new decision.
    for _ in range(3):
        again = client.get(image)
        assert again["Location"] == "https://cdn.example.com/spring.png"
    assert Decision.objects.count() == 1 and BlockDecision.objects.count() == 1

    clicked = client.get(click + "?next=https://evil.example.net/")
    assert clicked.status_code == 302 and clicked["Location"] == "https://shop.example.com/spring"
    client.get(click)
    assert sorted(Outcome.objects.values_list("outcome", flat=True)) == ["clicked", "impression"]
    # A click on the message too.
    message.refresh_from_db()
    assert message.clicked_at is not None and message.opened_at is not None
    assert DecisionAction.objects.get(decision=decision).label == 1


def test_without_an_image_the_banner_is_drawn_here(shop, smtp):
    settings_set(shop, control_percent=0)
    action_add(
        shop,
        "tutorial",
        channels=["email"],
        content={"email": {"title": "Brew tutorial", "link_url": "https://shop.example.com/t"}},
    )
    ann = customer(shop, "ann", email="ann@example.com", first_name="Ann")
    _, mail = _send(shop, smtp, ann)
    image, _click = _block_urls(mail)
    response = Client().get(image)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert response.content[16:24] == (600).to_bytes(4, "big") + (120).to_bytes(4, "big")


def test_nothing_given_is_a_transparent_pixel_and_a_click_leads_nowhere(shop, smtp):
    settings_set(shop, control_percent=0)
    # Eligible for nobody.
    action_add(
        shop,
        "gold",
        channels=["email"],
        eligibility={"trait": "plan", "op": "eq", "value": "gold"},
        content={"email": {"title": "Gold", "link_url": "https://shop.example.com/gold"}},
    )
    ann = customer(shop, "ann", email="ann@example.com", first_name="Ann")
    _, mail = _send(shop, smtp, ann)
    image, click = _block_urls(mail)
    response = Client().get(image)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert len(response.content) < 100
    assert BlockDecision.objects.get().action is None
    assert Client().get(click).status_code == 404
    assert not Outcome.objects.exists()


def test_tampered_or_foreign_tokens_are_refused(shop, smtp):
    settings_set(shop, control_percent=0)
    action_add(
        shop,
        "sale",
        channels=["email"],
        content={"email": {"title": "Sale", "link_url": "https://shop.example.com/sale"}},
    )
    ann = customer(shop, "ann", email="ann@example.com", first_name="Ann")
    message, mail = _send(shop, smtp, ann)
    image, _click = _block_urls(mail)
    token = image.removeprefix("/m/nba/").removesuffix(".png")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    client = Client()
    for bad in (
        flipped,
        # Signed, but by the open tracking (another salt): not a block token.
        tracking.open_token(str(message.pk)),
        "not-a-token",
    ):
        assert client.get(f"/m/nba/{bad}.png").status_code == 404
        assert client.get(f"/m/nba/{bad}/click").status_code == 404
    # A placement changed in a token re-signed by nobody: the signature fails.
    other = blocks.block_token(message.pk, "email_footer")
    assert other == token
    assert not Decision.objects.exists()
    # A well-signed token of a message that is not there (erased): nothing, no error.
    ghost = blocks.block_token("0193a000-0000-7000-8000-000000000000", "email_footer")
    assert client.get(f"/m/nba/{ghost}.png").status_code == 200
    assert client.get(f"/m/nba/{ghost}/click").status_code == 404
    # Only GET.
    assert client.post(image).status_code == 405


def test_an_action_link_that_is_not_http_is_never_followed(shop, smtp):
    settings_set(shop, control_percent=0)
    action_add(
        shop,
        "odd",
        channels=["email"],
        content={"email": {"title": "Odd", "link_url": "javascript:alert(1)"}},
    )
    ann = customer(shop, "ann", email="ann@example.com", first_name="Ann")
    _, mail = _send(shop, smtp, ann)
    image, click = _block_urls(mail)
    assert Client().get(image).status_code == 200
    assert Client().get(click).status_code == 404


def test_a_proof_and_a_template_check_take_the_tag(shop):
    from rapport.channels.render import render, template_check

    template_check(HTML, field="html")
    # Rendered outside a message (a proof): no block, no decision.
    out = render(subject="S", html=HTML, text="", context={"customer": {"first_name": "A"}})
    assert "/m/nba/" not in out.html and "Hello A" in out.html
    assert not Decision.objects.exists()


def test_the_contact_policys_cap_does_not_empty_the_block_of_the_mail_it_counted(shop, smtp):
    from rapport.channels.models import ContactPolicy

    settings_set(shop, control_percent=0)
    ContactPolicy.objects.update_or_create(
        workspace=shop.workspace, defaults={"caps": {"email": {"max": 1, "days": 7}}}
    )
    action_add(
        shop,
        "spring-sale",
        channels=["email"],
        content={"email": {"title": "Spring sale", "link_url": "https://shop.example.com/spring"}},
    )
    ann = customer(shop, "ann", email="ann@example.com", first_name="Ann")
    _message, mail = _send(shop, smtp, ann, purpose="marketing")
    image, _click = _block_urls(mail)
    # The week's one marketing email is sent: a new email would be capped...
    from rapport.decisions.engine import decision_make

    assert decision_make(workspace=shop.workspace, profile=ann, channel="email").actions == []
    # ...but the block of the email sent is still decided.
    assert Client().get(image).status_code in (200, 302)
    assert BlockDecision.objects.get().action.key == "spring-sale"
