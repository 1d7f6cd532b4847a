"""What a run reads and writes: checkpoints, resuming, theta files, result files, tracking."""
