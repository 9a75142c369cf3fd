"""The FAQ answerer: retrieve over question + answer, score, and say "no answer" below a threshold."""
