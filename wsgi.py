import os
from pathlib import Path

from app import create_app

# `make run` records the settings it serves with (SANDBOX, PUBLIC_BASE_URL) in var/run.env, so a
# `flask --app wsgi …` command run beside it talks to the same sandbox. The environment always wins,
# and production (APP_ENV=production) never reads the file.
RUN_ENV = Path(__file__).resolve().parent / "var" / "run.env"


def read_run_env(path: Path, environ: dict[str, str] | os._Environ[str]) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and value:
            environ.setdefault(name.strip(), value.strip())


if os.environ.get("APP_ENV", "development") != "production" and RUN_ENV.is_file():
    read_run_env(RUN_ENV, os.environ)

app = create_app()
