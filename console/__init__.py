"""loadmaster's front ends: the Textual console (app, screens), the CLI (cli, commands/) and the
headless daemon (daemon). What they share — the engine, its API, the config and its watch — is in core."""
