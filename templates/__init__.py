"""Jinja2 templates for fix snippets (``fixes/``) and message text, shipped as package data."""
