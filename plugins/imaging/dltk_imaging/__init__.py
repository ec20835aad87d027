"""dltk imaging plugin."""
