"""Offline work: rendering training data, training, evaluation. Imports models/ and realtime/ feature code."""
