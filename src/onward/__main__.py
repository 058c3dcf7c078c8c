from onward.cli import app

app()
