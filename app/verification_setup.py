"""Builds the configured identity verifier (VERIFY_PROVIDER) into app.extensions["verifier"].

The worker (issue 5) calls `verifier().verify(...)`; which provider answers is only decided here.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.services.verification import HttpVerifier, IdentityVerifier, SandboxRosterVerifier


def init_verifier(app: Flask) -> IdentityVerifier:
    provider: IdentityVerifier
    if app.config["VERIFY_PROVIDER"] == "sandbox":
        # config.py allows the sandbox provider only with SANDBOX=1 and never in production.
        from app.sandbox.roster import RedisRoster

        provider = SandboxRosterVerifier(RedisRoster(app.extensions["redis"]))
    else:
        provider = HttpVerifier(
            app.config["VERIFY_HTTP_URL"],
            app.config["VERIFY_HTTP_KEY_ID"],
            app.config["VERIFY_HTTP_SECRET"],
            app.config["VERIFY_TIMEOUT_SECONDS"],
        )
    app.extensions["verifier"] = provider
    return provider


def verifier() -> IdentityVerifier:
    """The app's identity verifier (needs an app context)."""
    provider: IdentityVerifier = current_app.extensions["verifier"]
    return provider
