"""Benchmarks, one module per figure an issue names; each returns a JSON-able dict."""
