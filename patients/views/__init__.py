"""Console pages of the patients app, one module per concern."""
