"""The `parjanya` command: a thin typer layer over library functions."""
