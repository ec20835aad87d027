"""dltk video plugin."""
