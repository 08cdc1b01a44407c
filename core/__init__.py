"""loadmaster's core: model, config, optimizer, hostlink and engine. Never imports the console."""
