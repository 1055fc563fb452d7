"""One module per scenario; each measures the system and its limit in the same run."""
