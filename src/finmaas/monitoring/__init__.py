"""Monitoring: live population counts and their drift from a version's reference."""
