"""Readers that turn files into validated events."""
