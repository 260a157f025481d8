"""SQLModel tables (PostgreSQL). Never crossing into workflows."""
