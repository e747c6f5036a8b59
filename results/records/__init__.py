"""Laboratory records: order turnaround against the service standard and the satisfaction survey."""
