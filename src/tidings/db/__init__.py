"""The database: engines, the group committer, notifications, migrations."""
