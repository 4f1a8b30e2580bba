"""skycore-lab (being assembled)."""
