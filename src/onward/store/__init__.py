"""Generic stores: idempotent writes (`insert_once`), large payloads, transcripts."""
