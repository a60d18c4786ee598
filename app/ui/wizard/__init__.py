"""The connection wizard: apps → authorize each → configure → preview (SPEC §1)."""
