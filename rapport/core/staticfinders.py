"""Static files Rapport takes from npm packages (package.json, installed by `make run`
and `make test` with `npm ci`): only the files named here are served and collected,
not the whole package (ECharts' dist/ alone is 53 MB)."""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Warning
from django.core.files.storage import FileSystemStorage

# Static path -> file inside node_modules.
NPM_STATIC_FILES = {
    "vendor/echarts/echarts.min.js": "echarts/dist/echarts.min.js",
    "vendor/echarts/LICENSE": "echarts/LICENSE",
    # ECharts' own texts (toolbox, aria, dates) in Russian, loaded on Russian pages.
    "vendor/echarts/i18n/langRU.js": "echarts/i18n/langRU.js",
    # The journey editor's graph of steps (drag to connect).
    "vendor/drawflow/drawflow.min.js": "drawflow/dist/drawflow.min.js",
    "vendor/drawflow/drawflow.min.css": "drawflow/dist/drawflow.min.css",
    "vendor/drawflow/LICENSE": "drawflow/LICENSE",
    "vendor/sortablejs/Sortable.min.js": "sortablejs/Sortable.min.js",
    "vendor/sortablejs/LICENSE": "sortablejs/LICENSE",
}


def _node_modules() -> Path:
    return Path(settings.RAPPORT_NODE_MODULES)


class NpmFinder(BaseFinder):
    def check(self, **kwargs):
        # A warning, not an error: without the packages Rapport runs, its charts do not.
        missing = [
            source
            for source in NPM_STATIC_FILES.values()
            if not (_node_modules() / source).is_file()
        ]
        if not missing:
            return []
        return [
            Warning(
                f"front-end packages not installed: {', '.join(missing)} missing under "
                f"{_node_modules()}",
                hint="Run `npm ci` in the repository (make run and make test do).",
                id="rapport.W002",
            )
        ]

    def find(self, path, find_all=False, **kwargs):
        source = NPM_STATIC_FILES.get(path)
        if source is None or not (_node_modules() / source).is_file():
            return [] if find_all else None
        found = str(_node_modules() / source)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        for path, source in NPM_STATIC_FILES.items():
            file = _node_modules() / source
            if not file.is_file():
                continue
            storage = FileSystemStorage(location=file.parent)
            # collectstatic writes each file under the storage's prefix.
            storage.prefix = str(Path(path).parent)
            if Path(path).name != file.name:
                raise ValueError(f"{path}: a file keeps its npm name ({file.name})")
            yield file.name, storage
