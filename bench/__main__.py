"""`make bench`: run every benchmark module under bench/ (or those named on the
command line) and write their figures to bench/results/<name>.json."""

import importlib
import json
import pkgutil
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(names: list[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    modules = names or sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        figures = module.run()
        suffix = f"-{figures['database']}" if "database" in figures else ""
        (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
