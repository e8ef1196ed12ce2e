"""Buildfile text → typed instructions: logical lines, the Lark grammar, flags, JSON forms,
heredocs and word expansion.  Pure; imports only errors."""
