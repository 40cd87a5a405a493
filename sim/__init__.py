"""Simulated suits and bodies, the virtual-clock runner, reports."""
