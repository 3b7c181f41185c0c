"""(issue 3, in progress) regions, schools, batches and the enrollment endpoint."""
