"""The HTTP API over the engine (/v1, JSON, bearer tokens); imports no Textual, so headless and console share it."""
