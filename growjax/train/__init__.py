"""Training: optimizer, train state and step, metrics, and the staged loop."""
