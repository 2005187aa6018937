"""Sandbox backends behind one interface (`base.Sandbox`): bubblewrap (default) and Docker."""
