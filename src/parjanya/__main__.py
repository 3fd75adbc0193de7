from parjanya.cli.main import app

app(prog_name="parjanya")
