"""Transfer from auxiliary tasks during pruning: sources, the weight schedule, and the auxiliary branch."""
