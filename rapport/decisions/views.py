"""The endpoints of an email's block decided when it is opened (blocks.py). No sign-in:
the signed token in the URL is the only credential."""

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from rapport.channels import services
from rapport.decisions import banner, blocks


def _block(token: str):
    found = blocks.block_token_read(token)
    if found is None:
        raise Http404("This link is not valid")
    message_id, placement = found
    return blocks.block_decide(message_id=message_id, placement=placement)


@never_cache
@require_http_methods(["GET"])
def block_image(request: HttpRequest, token: str) -> HttpResponse:
    block = _block(token)
    image = blocks.block_image(block)
    if image is not None:
        return HttpResponseRedirect(image)
    if block is None or block.action is None:
        return HttpResponse(banner.PIXEL, content_type="image/png")
    content = (block.action.content or {}).get("email") or {}
    title = str(content.get("title") or block.action.name)
    return HttpResponse(banner.banner_png(title), content_type="image/png")


@never_cache
@require_http_methods(["GET"])
def block_click(request: HttpRequest, token: str) -> HttpResponse:
    block = _block(token)
    link = blocks.block_clicked(block) if block is not None else None
    if link is None:
        raise Http404("Nothing to open here")
    # A click on the message as well ("Email Link Clicked", the engagement KPIs), but
    # not on the action the message itself may carry: this block's is recorded above.
    services.delivery_event_record(
        event_type="clicked",
        metadata={"rapport_message_id": str(block.message_id)},
        url=link,
        answered=False,
    )
    return HttpResponseRedirect(link)
