"""The production files (docker-compose.yml, Dockerfile): what the web process writes, the worker can read."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_platform import PRODUCTION_ENV, manage

ROOT = Path(__file__).resolve().parent.parent


def blocks(text: str, indent: int) -> dict[str, str]:
    """The YAML mapping keys at ``indent`` spaces and the text under each (no YAML library in the project)."""
    found: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        match = re.match(rf"^ {{{indent}}}([A-Za-z0-9_-]+):(.*)$", line)
        if match:
            key = match.group(1)
            found[key] = match.group(2) + "\n"
        elif key is not None and (line.startswith(" " * (indent + 1)) or not line.strip()):
            found[key] += line + "\n"
        elif line.strip() and not line.startswith(" " * (indent + 1)):
            key = None
    return found


def test_web_worker_and_beat_share_one_named_volume_at_var_dir_where_uploads_and_the_bank_live(tmp_path):
    var_dir = re.search(r"\bVAR_DIR=(\S+)", (ROOT / "Dockerfile").read_text()).group(1)
    compose = (ROOT / "docker-compose.yml").read_text()
    top = blocks(compose, 0)
    app = top["x-app"]
    mounts = re.search(r"^\s*volumes:\s*\[(.*)\]", app, re.MULTILINE)
    assert mounts, "web, worker and beat (x-app) mount no volume: the worker cannot read the web's uploads"
    mounts = mounts.group(1)
    shared = [m.strip().split(":")[0] for m in mounts.split(",") if m.strip().split(":")[1] == var_dir]
    assert len(shared) == 1, f"x-app mounts no volume at {var_dir}"
    assert re.search(rf"^  {shared[0]}:", top["volumes"], re.MULTILINE), "not a named volume"
    services = blocks(top["services"], 2)
    for name in ("web", "worker", "beat"):
        assert "<<: *app" in services[name], name
        assert "volumes:" not in services[name], f"{name} replaces the shared volume"
    # What the web stores for the worker lives under VAR_DIR with production settings.
    code = "from django.conf import settings as s; print(s.BATCH_UPLOAD_DIR); print(s.SIMULATED_BANK_PATH)"
    result = manage("shell", "-c", code, env={**PRODUCTION_ENV, "VAR_DIR": str(tmp_path)})
    uploads, bank = result.stdout.split()[-2:]
    assert Path(uploads).is_relative_to(tmp_path) and Path(bank).is_relative_to(tmp_path)


def test_every_gunicorn_command_caps_the_request_line_and_headers():
    """gunicorn's --limit-request-* bound the request line and headers (it has no body limit: the body is
    capped by billing_bo.uploads and, in front, by the proxy: README "Configuration")."""
    commands = [
        line
        for name in ("Procfile", "Dockerfile", "docker-compose.yml")
        for line in (ROOT / name).read_text().splitlines()
        if "gunicorn" in line and "billing_bo.wsgi" in line
    ]
    assert len(commands) == 3
    for line in commands:
        flat = line.replace('", "', " ")
        for flag in ("--limit-request-line 4094", "--limit-request-fields 50", "--limit-request-field_size 8190"):
            assert flag in flat, line
