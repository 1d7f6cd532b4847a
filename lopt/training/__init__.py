"""Training a task with a given optimizer: curves over seeds, vectorized sweeps, comparisons with a
baseline, and what one step costs."""
