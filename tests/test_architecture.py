"""Which app may import which: the layers in pyproject.toml's [tool.importlinter],
checked on every run. Data flows down (ingest -> identity -> profiles; segments,
predictions and analytics read what is below them); a lower app learns of a higher one
only through a registry the higher one fills from its AppConfig.ready."""

from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_the_apps_keep_their_layers(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert status == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        # identity writes profiles (it imports them); profiles never reaches back.
        ("rapport.profiles", "rapport.identity"),
        # predictions registers its rule conditions; segments never imports predictions.
        ("rapport.segments", "rapport.predictions"),
        ("rapport.segments", "rapport.analytics"),
        ("rapport.ingest", "rapport.identity"),
    ],
)
def test_no_module_imports_against_the_flow(importer, imported):
    graph = grimp.build_graph("rapport", exclude_type_checking_imports=True, cache_dir=None)
    chains = graph.find_shortest_chains(importer=importer, imported=imported, as_packages=True)
    # Only `rapport quickstart` (tenancy's CLI) loads the demo, which reaches everything.
    chains = {c for c in chains if "rapport.tenancy.cli" not in c}
    assert chains == set()
