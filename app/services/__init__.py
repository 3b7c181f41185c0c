"""Business rules: plain typed functions that take a session and commit once. No Flask request state."""
