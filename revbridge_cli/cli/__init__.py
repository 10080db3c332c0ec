"""The command line: Typer commands, terminal output, process-wide runtime."""
