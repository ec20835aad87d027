"""dltk genomics plugin."""
