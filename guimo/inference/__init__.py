"""Inference over finished runs, one module per scenario kind (what the server and CLI call)."""
