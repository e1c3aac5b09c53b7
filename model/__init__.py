"""finsent: model."""
