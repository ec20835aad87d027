"""dltk chem plugin: QSAR and toxicity on RDKit molecules. Import stays light (no torch, no RDKit)."""
