"""compute_to_data."""
