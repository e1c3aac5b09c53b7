"""finsent: alerts."""
