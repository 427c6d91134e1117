#!/usr/bin/env python3
"""CDK entry point: builds VideoGenStack (named by context ``stackName``) and nothing else. No AWS calls.

    npx cdk synth                      # or: make synth
    npx cdk deploy -c stackName=Videos -c corsAllowOrigins=https://app.example.com

The options and their context keys: infra/options.py. The deploy guide: docs/deploy.md.
"""

import sys

from aws_cdk import App

from infra.nag import unacknowledged
from infra.stack import build

app = App()
build(app)
assembly = app.synth()
findings = unacknowledged(assembly.directory)
if findings:
    sys.exit("Unacknowledged findings (fix them, or acknowledge each with a specific reason):\n" + "\n".join(findings))
