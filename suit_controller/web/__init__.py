"""The trainer's web console (see app.py)."""
