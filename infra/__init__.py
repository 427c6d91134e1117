"""CDK constructs for the deployed stack. infra.config is plain Python, shared with the local stack."""
