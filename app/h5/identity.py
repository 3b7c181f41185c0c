"""(issue 3, in progress) /h5/bind and /h5/me."""
