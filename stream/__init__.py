"""finsent: stream."""
