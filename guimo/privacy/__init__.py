"""Privacy: differentially private training (dp, Opacus) and PII anonymisation (anonymize)."""
