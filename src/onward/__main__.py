from onward.cli.main import app

app()
