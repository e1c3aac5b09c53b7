"""finsent: storage."""
