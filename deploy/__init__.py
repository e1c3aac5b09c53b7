"""finsent: deploy."""
