"""The `lopt` command line: dispatches a command to its Hydra app."""
