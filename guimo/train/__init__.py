"""The one training loop (`loop.fit`), its config, checkpoints and distributed helpers."""
