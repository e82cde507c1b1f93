"""The shared kernel every layer may import: user-facing errors, typed configuration, the
feature's prompt, the console and the CLI options. It imports nothing else of the project."""
