import os
from pathlib import Path

from app import create_app
from app.run_env import read_run_env

# `make run` records the settings it serves with (SANDBOX, PUBLIC_BASE_URL) in var/run.env, so a
# `flask --app wsgi …` command run beside it talks to the same sandbox. The environment always wins,
# and only the development mode (the default, what `make run` serves) reads the file: not production,
# and not the test suite (APP_ENV=testing), which a `make run` in the same checkout must not steer.
RUN_ENV = Path(__file__).resolve().parent / "var" / "run.env"

if os.environ.get("APP_ENV", "development") == "development" and RUN_ENV.is_file():
    read_run_env(RUN_ENV, os.environ)

app = create_app()
