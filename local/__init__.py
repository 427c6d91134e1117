"""The embedded local stack: CometAPI simulator, moto-backed AWS, the local Lambda registry and the CLI."""
