"""Third-party front-end files come from node_modules (npm ci), not from the repository."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import reverse

from rapport.core.staticfinders import NPM_STATIC_FILES, NpmFinder
from tests.web.clients import signed_in

REPO = Path(__file__).resolve().parents[2]
installed = pytest.mark.skipif(
    not (Path(settings.RAPPORT_NODE_MODULES) / "echarts").is_dir(),
    reason="the npm packages (npm ci) not installed",
)


@installed
@pytest.mark.parametrize("path", sorted(NPM_STATIC_FILES))
def test_each_npm_file_is_found_under_its_static_path(path):
    found = finders.find(path)
    assert found and Path(found).is_file()
    assert Path(found).is_relative_to(Path(settings.RAPPORT_NODE_MODULES))


@installed
def test_collectstatic_takes_only_the_named_files_of_a_package(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)
    assert sorted(p.name for p in (tmp_path / "vendor" / "echarts").iterdir()) == sorted(
        ["echarts.min.js", "echarts.min.js.gz", "LICENSE", "LICENSE.gz", "i18n"]
    )
    assert sorted(p.name for p in (tmp_path / "vendor" / "echarts" / "i18n").iterdir()) == [
        "langRU.js",
        "langRU.js.gz",
    ]


@installed
def test_the_chart_pages_script_is_served(tenant):
    client = signed_in(tenant)
    page = client.get(reverse("web:analytics")).content.decode()
    src = re.search(r'<script src="([^"]*echarts[^"]*)"', page).group(1)
    response = client.get(src)
    assert response.status_code == 200
    assert b"echarts" in b"".join(response.streaming_content)[:5000].lower()


def test_missing_packages_are_a_warning_naming_the_command(settings, tmp_path):
    settings.RAPPORT_NODE_MODULES = str(tmp_path)
    (warning,) = NpmFinder().check()
    assert warning.id == "rapport.W002" and "npm ci" in warning.hint
    assert NpmFinder().find("vendor/echarts/echarts.min.js") is None


def test_no_third_party_file_is_committed_under_static():
    minified = [p for p in (REPO / "rapport").rglob("static/**/*.min.js")]
    assert minified == []
    assert not any((REPO / "rapport").rglob("static/**/vendor"))
