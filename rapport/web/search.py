"""The global search page (`/search/?q=`) and its live results: the box in the top bar
asks for a short list as one types (htmx), Enter opens the whole page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rapport.core.errors import InvalidInputError
from rapport.core.search import QUERY_MAX_LENGTH, search_run
from rapport.web.pages import error_text, workspace_page

# Hits per kind: a few in the live list under the box, more on the page.
POPOVER_LIMIT = 5
PAGE_LIMIT = 25


@workspace_page()
def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    popover = bool(request.htmx) and request.htmx.target == "search-popover"
    error = None
    try:
        sections = search_run(request.principal, q, limit=POPOVER_LIMIT if popover else PAGE_LIMIT)
    except InvalidInputError as invalid:
        sections, error = [], error_text(invalid)
    context = {
        "search_query": q[:QUERY_MAX_LENGTH],
        "query": q.strip(),
        "sections": sections,
        "error": error,
        "popover": popover,
    }
    if popover:
        return render(request, "web/search/_popover.html", context)
    if request.htmx:
        return render(request, "web/search/_results.html", context)
    return render(request, "web/search/page.html", context, status=422 if error else 200)
