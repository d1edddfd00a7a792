"""Helpers for the crash and soak tests, some run as processes of their own."""
