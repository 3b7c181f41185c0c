"""(issue 3, in progress) /api/v1/me and the identity endpoints."""
