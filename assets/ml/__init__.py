"""ML assets built from model specs: training set, model version, gate, predictions (and monitoring)."""
