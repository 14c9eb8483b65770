"""The plugin starts fast because its verbs import what they need when they run: building the parser
(`kubectl rollouts version --client`, completion) imports no API client, no delivery library and no
schema validator. A new verb importing one of them at module level would add 0.1-0.3 s to every command."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("kubernetes", "apprise", "slack_sdk", "pymsteams", "jsonschema", "aiohttp", "httpx", "playwright")


def test_building_the_plugin_parser_imports_nothing_heavy() -> None:
    probe = (
        "import sys; from rollouts.cli import main; main.build_parser(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported at start-up: {result.stdout.strip()}"
