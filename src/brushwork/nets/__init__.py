"""Feed-forward networks that turn a photo into a painting in one pass, one file per network."""
