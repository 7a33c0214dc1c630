"""REST API and web page."""
