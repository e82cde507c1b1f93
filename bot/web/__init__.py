"""The web front: a rating page for raters outside chat and a live dashboard, served by the
bot's own HTTP server. Importing this package imports nothing heavy (aiohttp loads in app)."""
