"""loadmaster's front ends: the CLI and the Textual console."""
