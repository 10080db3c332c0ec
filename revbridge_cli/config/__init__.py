"""Configuration: flags > environment > profile -> one settings object."""
