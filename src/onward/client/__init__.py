"""Client code: connecting to Temporal and talking to conversations, from the API,
the CLI or your own program."""
