"""The optimize stage: Optuna hyperparameter search and int8 post-training quantization."""
