"""Evaluations of trained and grown models."""
