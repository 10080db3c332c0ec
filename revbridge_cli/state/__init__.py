"""State: --state's journal, what is settled, and where a rerun resumes."""
