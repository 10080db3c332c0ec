"""Delivery: request bodies -> the server, with retries, lanes and a concurrency limit."""
