"""dltk_toy: a tiny third-party-style dltk plugin for the core tests (synthetic data, small MLP)."""
