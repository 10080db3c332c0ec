"""Reading: files, stdin, gzip and formats -> raw records with their file and line."""
