import os
from pathlib import Path

from app import create_app

# `make run` records the settings it serves with (SANDBOX, PUBLIC_BASE_URL) in var/run.env, so a
# `flask --app wsgi …` command run beside it talks to the same sandbox. The environment always wins,
# and production (APP_ENV=production) never reads the file.
RUN_ENV = Path(__file__).resolve().parent / "var" / "run.env"


def read_run_env(path: Path, environ: dict[str, str] | os._Environ[str]) -> None:
    recorded: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and value:
            recorded[name.strip()] = value.strip()
    # The recorded emulator belongs to the recorded service: a command pointed at another service
    # (its own PUBLIC_BASE_URL) must not send WeChat calls to that run's sandbox process.
    if environ.get("PUBLIC_BASE_URL", recorded.get("PUBLIC_BASE_URL")) != recorded.get("PUBLIC_BASE_URL"):
        recorded.pop("SANDBOX_URL", None)
    for name, value in recorded.items():
        environ.setdefault(name, value)


if os.environ.get("APP_ENV", "development") != "production" and RUN_ENV.is_file():
    read_run_env(RUN_ENV, os.environ)

app = create_app()
