"""Console pages of the follow-ups app."""
