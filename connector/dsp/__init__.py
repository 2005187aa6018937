"""DSP 2025-1 messages as they go on the wire, and the client that sends them."""
