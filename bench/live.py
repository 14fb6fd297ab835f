"""What the page benchmarks share: a live server's database filled by a benchmark's own
`--fill` entry point, in a process of its own (the server's settings, not the bench's)."""

import json
import subprocess
import sys


def live_fill(server, module: str) -> dict:
    """Run `python -m <module> --fill Live` against `server`'s database; what it prints
    last (JSON) is the ids to request."""
    fill = subprocess.run(
        [sys.executable, "-m", module, "--fill", "Live"],
        env={**server.env, "DJANGO_SETTINGS_MODULE": "rapport.settings"},
        capture_output=True,
        text=True,
    )
    if fill.returncode:
        raise RuntimeError(fill.stderr[-3000:])
    return json.loads(fill.stdout.strip().splitlines()[-1])
