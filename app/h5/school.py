"""(issue 3, in progress) /h5/school."""
