"""Judge prompt templates ($-placeholders, string.Template)."""
