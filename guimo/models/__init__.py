"""The shared transformer and its helpers (presets, parameter/FLOP counts, pretrained loading)."""
