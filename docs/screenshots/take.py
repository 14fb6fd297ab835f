"""Screenshots of Rapport for the README and release notes: home, the customer list and
a person page, on a desktop (1440 px) and a phone (390 px), in one language.

    python docs/screenshots/take.py http://127.0.0.1:8000 demo@example.com PASSWORD
    python docs/screenshots/take.py URL EMAIL PASSWORD --language en --out /tmp/shots

It signs in to a running server (e.g. the one `rapport quickstart` set up) with
Playwright and Debian's Chromium (/usr/bin/chromium; Playwright never downloads a
browser here), switches the person's language for the session's pages, and switches
it back at the end. Files: <out>/<page>-<desktop|phone>.png.
"""

import argparse
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{base}/")


def language_set(page, base: str, code: str) -> str:
    """Chooses the language in the person's menu; answers the one it replaced."""
    page.goto(f"{base}/")
    page.locator("details.me summary").click()
    select = page.locator("#language-select")
    before = select.input_value()
    select.select_option(code)
    page.locator("form:has(#language-select) button[type=submit]").click()
    page.wait_for_load_state()
    return before


def person_url(page, base: str) -> str:
    page.goto(f"{base}/customers/")
    link = page.locator("main a[href^='/customers/0'], main a[href*='/customers/'][href$='/']")
    for i in range(link.count()):
        href = link.nth(i).get_attribute("href") or ""
        parts = [p for p in href.split("/") if p]
        if len(parts) == 2 and parts[0] == "customers" and len(parts[1]) == 36:
            return base + href
    raise SystemExit("no customer on the customer list to photograph")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the running server, e.g. http://127.0.0.1:8000")
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("--language", default="ru")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args()
    base = args.url.rstrip("/")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            setup = browser.new_page(viewport={"width": 1440, "height": 900})
            sign_in(setup, base, args.email, args.password)
            before = language_set(setup, base, args.language)
            pages = {
                "home": f"{base}/",
                "customers": f"{base}/customers/",
                "person": person_url(setup, base),
            }
            for device, (width, height) in WIDTHS.items():
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    device_scale_factor=2 if device == "phone" else 1,
                    is_mobile=device == "phone",
                    has_touch=device == "phone",
                )
                page = context.new_page()
                sign_in(page, base, args.email, args.password)
                for name, url in pages.items():
                    page.goto(url)
                    page.wait_for_load_state("networkidle")
                    path = out / f"{name}-{device}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(path)
                context.close()
            if before != args.language:
                language_set(setup, base, before or "en")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
