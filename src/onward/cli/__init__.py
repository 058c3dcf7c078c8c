"""The `onward` command line: the server, the terminal chat, chaos runs, evals."""
