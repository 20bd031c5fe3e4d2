"""Console pages of the integration engine: overview, error queue, raw message search, source profiles."""
