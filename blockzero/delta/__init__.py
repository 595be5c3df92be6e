"""Pseudo-gradients: compute them, write and verify submission files, and apply the outer step."""
