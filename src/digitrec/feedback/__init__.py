"""The feedback store (SQLite or PostgreSQL): what users corrected, its schema and retention. Never torch."""
