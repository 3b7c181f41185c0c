"""Job kinds that call WeChat's API."""
