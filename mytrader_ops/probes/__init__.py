"""I/O probes. Each takes a ProbeContext and a check and returns an Observation."""
