"""Sentra Scan: a Git secret scanner and guard."""
