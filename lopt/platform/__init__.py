"""The machine a run uses: devices and processes, XLA compile options, memory."""
