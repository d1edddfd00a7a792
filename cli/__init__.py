"""The dealtrail command line."""
