"""videogen's Lambda code: one asset, one folder per function, shared code in common/ and providers/."""
